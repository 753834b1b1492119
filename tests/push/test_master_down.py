"""A push is never lost because the master is down: spooled, then delivered once."""
from __future__ import annotations

import time

import pytest

from tests.conftest import scaled
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e


def test_push_while_master_down_is_spooled_then_built_once(tmp_path):
    world = World(tmp_path / "w", workers=1)
    world.up()
    try:
        clone = world.clone(tmp_path / "c")
        world.down()
        (clone / "NOTE.md").write_text("written while the master was down\n")
        sha = commit_all(clone, "while down")
        started = time.monotonic()
        push = world.push(clone, "main")
        elapsed = time.monotonic() - started
        assert push.returncode == 0
        assert elapsed < scaled(8), f"push stalled {elapsed:.1f}s"
        assert "kept in" in push.stderr
        spooled = list((world.bare / "greenlight-spool").glob("*.json"))
        assert len(spooled) == 1
        world.up()  # up flushes the spool once the master listens
        build = world.wait_build(sha)
        assert build["results"] == 0
        # Nothing was left to send (flush is synchronous), so no second change can follow.
        assert world.greenlight("flush", str(world.bare)).stdout.startswith("0 change(s)")
        assert len(world.changes_for(sha)) == 1
        assert len(world.builds_for(sha)) == 1
    finally:
        world.down()
