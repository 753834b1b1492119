"""End to end, client side: the pre-push hook installed by ``hooks/install client`` reviews the
migrations being pushed, refuses a risky one with the safe alternative, lets an explicit override
through, and the server's gate still stops that commit's verify build."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT, git, scaled
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

RISKY = "CREATE INDEX idx_users_created ON users (created_at);\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("prepush-world"), workers=1)
    world.up()
    yield world
    world.down()


@pytest.fixture(scope="module")
def clone(world, tmp_path_factory):
    clone = world.clone(tmp_path_factory.mktemp("prepush") / "c")
    install = subprocess.run([str(ROOT / "hooks" / "install"), "client", str(clone),
                              "--schema-dialect", "mariadb"],
                             check=False, capture_output=True, text=True, timeout=scaled(60))
    assert install.returncode == 0, install.stderr
    assert git(clone, "config", "greenlight.schema.dialect") == "mariadb"
    return clone


def remote_head(world: World) -> str:
    return git(world.bare, "rev-parse", "refs/heads/main")


def test_safe_migration_passes_the_hook(world, clone):
    (clone / "migrations" / "0003_create_audit.sql").write_text(
        "CREATE TABLE audit (id BIGINT PRIMARY KEY, note VARCHAR(200)) ENGINE=InnoDB;\n")
    sha = commit_all(clone, "audit table")
    push = world.push(clone, "main")
    assert push.returncode == 0, push.stderr
    assert "schema review: all statements safe or approved" in push.stderr
    assert remote_head(world) == sha


def test_risky_migration_is_refused_with_the_safe_alternative(world, clone):
    before = remote_head(world)
    (clone / "migrations" / "0004_users_created.sql").write_text(RISKY)
    sha = commit_all(clone, "index users.created_at")
    push = world.push(clone, "main")
    assert push.returncode != 0
    assert "NEEDS REVIEW" in push.stderr and "users is large" in push.stderr
    assert "gh-ost" in push.stderr and "pt-online-schema-change" in push.stderr
    assert "push refused" in push.stderr and "GREENLIGHT_SCHEMA_OVERRIDE=1" in push.stderr
    assert remote_head(world) == before  # nothing left the laptop
    assert world.changes_for(sha) == []


def test_override_pushes_but_the_server_gate_still_stops_the_build(world, clone):
    sha = git(clone, "rev-parse", "HEAD")
    assert git(clone, "show", "--name-only", "--format=", sha) == \
        "migrations/0004_users_created.sql"
    push = world.push(clone, "main", env={"GREENLIGHT_SCHEMA_OVERRIDE": "1"})
    assert push.returncode == 0, push.stderr
    assert "pushing anyway" in push.stderr
    assert remote_head(world) == sha
    build = world.wait_build(sha)
    assert build["results"] == 2
    assert "needs schema review: 1 statement(s)" in build["state_string"]
