"""The shard fan-out wired into Greenlight's own master with 3 workers and ``[shards] count =
3`` (the default ``"auto"`` keeps the demo's 2-s suite in the verify build: that and the fan-out
of a long predicted suite are in test_auto_fanout_e2e.py): a push runs 3 shard builds at once
(one per worker, the waiting verify build does not starve them), one verdict with every test run
exactly once, the combined coverage gate in the verify build, a flaky test recorded and shown on
the flaky tests page. The shard builds get the pytest plugin from the master (the demo's venv has
no Greenlight). The engine-level fan-out (a failing test failing the parent and named) is in
test_e2e_fanout.py; a worker lost mid-shard, in tests/master/test_remote_workers_e2e.py."""
from __future__ import annotations

import base64

import pytest
import requests

from greenlight.accounts import set_password
from greenlight.green_shas import last_green
from greenlight.shards.flaky import FlakyLedger
from greenlight.www.dashboard import MOUNT, make_app
from greenlight.settings import validate
from tests.conftest import scaled
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("fanout"), workers=3, shards=3)
    world.up()
    yield world
    world.down()



def _step(world: World, build_id: int, name: str) -> dict:
    steps = world.api(f"builds/{build_id}/steps")["steps"]
    found = [s for s in steps if s["name"] == name]
    assert found, f"no step {name!r} in {[s['name'] for s in steps]}"
    return found[0]


def test_push_fans_out_to_three_shards_with_one_verdict(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "app" / "triple.py").write_text("def triple(x):\n    return 3 * x\n")
    (clone / "tests" / "test_triple.py").write_text(
        "from app.triple import triple\n\ndef test_triple():\n    assert triple(2) == 6\n")
    sha = commit_all(clone, "add triple()")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 0, build["state_string"]

    shards = world.wait_shard_builds(build["buildid"], 3)
    assert len(shards) == 3, shards
    assert sorted(b["properties"]["shard_index"][0] for b in shards) == [1, 2, 3]
    assert all(b["results"] == 0 for b in shards), [b["state_string"] for b in shards]
    # One shard per worker, all three at once: the verify build's worker runs one too.
    assert len({b["workerid"] for b in shards}) == 3
    assert max(b["started_at"] for b in shards) < min(b["complete_at"] for b in shards)
    plugin = _step(world, shards[0]["buildid"], "shard-plugin")
    assert plugin["results"] == 0, plugin["state_string"]

    props = world.properties(build["buildid"])
    assert props["shard_count"] == 3
    assert props["shards_union_ok"] is True
    assert props["shards_result"] == "success" and props["shards_failed_tests"] == []
    collected = [t for s in props["shard_plan"]["shards"] for t in s["tests"]]
    assert "tests/test_triple.py::test_triple" in collected
    assert len(collected) == len(set(collected))
    sets = world.api(f"builds/{build['buildid']}/test_result_sets")["test_result_sets"]
    assert sets and sets[0]["tests_passed"] == len(collected) and sets[0]["tests_failed"] == 0

    gate = _step(world, build["buildid"], "coverage")
    assert gate["results"] == 0, gate["state_string"]
    fetched = _step(world, build["buildid"], "fetch-shard-coverage")
    assert "3 shards" in fetched["state_string"]


def test_flaky_test_warns_is_recorded_and_shown(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "tests" / "test_wobbly.py").write_text(
        "from pathlib import Path\n\nMARKER = Path(__file__).with_name('wobbly.marker')\n\n\n"
        "def test_wobbly_once():\n    first = not MARKER.exists()\n    MARKER.write_text('x')\n"
        "    assert not first, 'fails on its first run only'\n")
    sha = commit_all(clone, "a flaky test")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 1, build["state_string"]  # WARNINGS: flaky does not fail
    assert len(world.wait_shard_builds(build["buildid"], 3)) == 3
    props = world.properties(build["buildid"])
    flaky = "tests/test_wobbly.py::test_wobbly_once"
    assert props["shards_flaky_tests"] == [flaky] and props["shards_failed_tests"] == []
    # ... and still green: recorded as the branch's last green sha (what gates and deploys read)
    assert last_green(world.settings.state_dir / "green-shas.json", "main") == sha
    ledger = FlakyLedger(world.settings.expand(world.settings["shards"]["durations_url"]))
    assert [e.test_id for e in ledger.flakiest()] == [flaky]
    response = requests.get(world.url + MOUNT.lstrip("/") + "/flaky/", timeout=scaled(30))
    assert response.status_code == 200
    assert "Flaky tests" in response.text and "test_wobbly_once" in response.text


def test_flaky_page_ranks_and_escapes(tmp_path):
    settings = validate({"greenlight": {"state_dir": str(tmp_path)}})
    set_password(settings.path("auth", "password_file"), "viewer", "pw")
    ledger = FlakyLedger(settings.expand(settings["shards"]["durations_url"]))
    evil = "tests/test_x.py::test_<script>alert(1)</script>"
    ledger.record([evil, "tests/test_a.py::test_once"], build="7", commit="a" * 40)
    ledger.record([evil], build="9", commit="<b>" + "c" * 37)
    client = make_app(settings, session_secret=lambda: "s").test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"viewer:pw").decode()}
    page = client.get("/flaky/", headers=auth).get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>ccc" not in page and "&lt;b&gt;" in page
    assert page.index("test_&lt;script") < page.index("test_once")  # flakiest first
    assert '<td class="count">2</td>' in page
    assert client.get("/flaky/?days=x", headers=auth).status_code == 400
    recent = client.get("/flaky/?days=7", headers=auth).get_data(as_text=True)
    assert "last 7 days" in recent and "test_once" in recent
