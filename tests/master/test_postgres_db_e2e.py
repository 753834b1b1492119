"""Buildbot's own database on PostgreSQL (``[master] db_url``), end to end: up, push, a green
build, down, up again, another push and build; both builds are rows in PostgreSQL and the
master kept no SQLite file."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import fresh_pg_database
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
            world.down()
            world.up()
            second = push_and_build(world, tmp_path, "after-restart")
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
