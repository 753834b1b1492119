"""Buildbot's own database on PostgreSQL (``[master] db_url``), end to end: up, push, a green
build, down; a push while the master is down is kept by the hook (never lost) and delivered
once by the next up, then built once; both builds are rows in PostgreSQL and the master kept
no SQLite file."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import fresh_pg_database, scaled
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e


def push_and_build(world, tmp_path, name: str) -> dict:
    clone = world.clone(tmp_path / name)
    (clone / "NOTES.md").write_text(f"{name}\n")
    sha = commit_all(clone, f"notes: {name}")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 0, build["state_string"]
    return build


def test_buildbot_on_postgresql_builds_across_a_restart(tmp_path):
    with fresh_pg_database("glbb") as name:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        world = World(tmp_path / "world", workers=1, master=f'db_url = "{url}"\n')
        try:
            world.up()
            first = push_and_build(world, tmp_path, "before-restart")
            second = push_while_down_then_build(world, tmp_path)
            assert second["buildid"] > first["buildid"]
            assert world.api(f"builds/{first['buildid']}")["builds"][0]["results"] == 0
        finally:
            world.down()
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
        try:
            with engine.connect() as conn:
                ids = {row[0] for row in conn.execute(text("SELECT id FROM builds"))}
        finally:
            engine.dispose()
        assert {first["buildid"], second["buildid"]} <= ids
        basedir = world.settings.path("master", "basedir")
        assert not list(basedir.glob("*.sqlite"))


def push_while_down_then_build(world, tmp_path) -> dict:
    """A push is never lost because the master is down: the hook keeps it without stalling the
    push, ``up`` delivers it once the master listens, and it is built once."""
    clone = world.clone(tmp_path / "while-down")
    world.down()
    (clone / "NOTE.md").write_text("written while the master was down\n")
    sha = commit_all(clone, "while down")
    started = time.monotonic()
    push = world.push(clone, "main")
    elapsed = time.monotonic() - started
    assert push.returncode == 0
    assert elapsed < scaled(8), f"push stalled {elapsed:.1f}s"
    assert "kept in" in push.stderr
    assert len(list((world.bare / "greenlight-spool").glob("*.json"))) == 1
    world.up()  # up flushes the spool once the master listens
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 0, build["state_string"]
    # Nothing was left to send (flush is synchronous), so no second change can follow.
    assert world.greenlight("flush", str(world.bare)).stdout.startswith("0 change(s)")
    assert len(world.changes_for(sha)) == 1
    assert len(world.builds_for(sha)) == 1
    return build
