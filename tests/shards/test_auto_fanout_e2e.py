"""``[shards] count = "auto"`` on Greenlight's own master with workers on two machines (one local
worker, one ``[[workers.remote]]`` entry made and started by ``greenlight worker``): the demo's
short suite stays in the verify build (one test step, prepared coverage gate, durations
recorded, no shard build), and once the recorded durations predict a suite longer than
``min_suite_seconds`` the next push fans out to one shard per worker, local and remote.
The "remote" worker is a process on this host connecting over loopback: to the master a
``[[workers.remote]]`` entry is another machine wherever it runs (the network side is
tests/master/test_remote_workers_e2e.py's)."""
from __future__ import annotations

import subprocess

import pytest

from greenlight.shards.durations import DurationStore
from greenlight_master.workers_config import local_worker_names
from tests.conftest import ROOT, wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e
GREENLIGHT = str(ROOT / ".venv" / "bin" / "greenlight")
REMOTE = "far-1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("autofan")
    secret = base / f"{REMOTE}.secret"
    secret.write_text("remote-worker-password\n")
    # seed_build: the demo's first build is the plan's first decision (no durations yet)
    world = World(base, workers=1, shards="auto", seed_build=True, extra=(
        f'\n[[workers.remote]]\nname = "{REMOTE}"\npassword_file = "{secret}"\n'))
    machine = base / "machines" / REMOTE
    try:
        world.output = world.up()
        port = world.settings["master"]["worker_port"]
        subprocess.run([GREENLIGHT, "worker", "create", str(machine), "--master",
                        f"127.0.0.1:{port}", "--name", REMOTE, "--password-file", str(secret)],
                       check=True, capture_output=True)
        subprocess.run([GREENLIGHT, "worker", "start", str(machine)], check=True,
                       capture_output=True)
        wait_for(lambda: any(w["name"] == REMOTE and w["connected_to"]
                             for w in world.api("workers")["workers"]), 120,
                 f"worker {REMOTE} to connect")
        yield world
    finally:
        subprocess.run([GREENLIGHT, "worker", "stop", str(machine)], capture_output=True)
        world.down()


def _steps(world: World, build_id: int) -> dict[str, dict]:
    return {s["name"]: s for s in world.api(f"builds/{build_id}/steps")["steps"]}


def _why(world: World, build: dict) -> str:
    """The build's steps and their summaries, and the failed steps' output, for an assertion's
    message."""
    steps = _steps(world, build["buildid"])
    text = build["state_string"] + "; " + "; ".join(
        f"{name}: {s['state_string']} ({s['results']})" for name, s in steps.items())
    for name, step in steps.items():
        if step["results"] in (1, 2) or (build["results"] and name in ("tests", "coverage")):
            for log in world.api(f"steps/{step['stepid']}/logs")["logs"]:
                raw = world.rest_get(f"logs/{log['logid']}/raw")
                text += f"\n--- {name} / {log['name']}:\n{raw.text[-3000:]}"
    return text



def test_up_says_one_shard_per_worker_across_machines(world):
    assert "tests: fan-out: one shard per worker, 2 shards (1 on this machine, 1 remote)" \
        in world.output


def test_short_suite_runs_in_the_verify_build_then_a_long_one_fans_out(world, tmp_path):
    store = DurationStore(world.settings.expand(world.settings["shards"]["durations_url"]))
    clone = world.clone(tmp_path / "c")
    (clone / "app" / "triple.py").write_text("def triple(x):\n    return 3 * x\n")
    (clone / "tests" / "test_triple.py").write_text(
        "from app.triple import triple\n\ndef test_triple():\n    assert triple(2) == 6\n")
    sha = commit_all(clone, "add triple()")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 0, _why(world, build)
    props = world.properties(build["buildid"])
    assert props["shard_fan_out"] is False and props["shard_count"] == 1
    assert "shard_plan" not in props
    steps = _steps(world, build["buildid"])
    assert "run here" in steps["plan-shards"]["state_string"]
    assert steps["tests"]["results"] == 0 and "passed" in steps["tests"]["state_string"]
    for skipped in ("shards", "collect-shards", "fetch-shard-coverage", "combine coverage"):
        assert steps[skipped]["results"] == 3 and steps[skipped]["hidden"], skipped  # SKIPPED
    assert steps["coverage"]["results"] == 0, steps["coverage"]["state_string"]
    how = world.api(f"steps/{steps['coverage']['stepid']}/logs")["logs"]
    assert "how" in [log["name"] for log in how]  # the test step's gate report, read back
    assert world.shard_builds(build["buildid"]) == []   # it finished without triggering any
    # The build that ran the tests itself recorded their durations for the next decision.
    recorded = store.durations()
    assert "tests/test_triple.py::test_triple" in recorded
    demo_total = sum(recorded.values())
    assert demo_total < world.settings["shards"]["min_suite_seconds"]

    # The same suite, predicted long (as if each test took 2 s): the next push fans out.
    store.replace({test_id: 2.0 for test_id in recorded})
    (clone / "CHANGES").write_text("second push\n")
    sha = commit_all(clone, "a second push")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha, timeout=240)
    assert build["results"] == 0, _why(world, build)
    props = world.properties(build["buildid"])
    assert props["shard_fan_out"] is True and props["shard_count"] == 2
    shards = world.wait_shard_builds(build["buildid"], 2)
    assert len(shards) == 2 and all(b["results"] == 0 for b in shards)
    names = {w["workerid"]: w["name"] for w in world.api("workers")["workers"]}
    assert {names[b["workerid"]] for b in shards} == {REMOTE, *local_worker_names(world.settings)}
    steps = _steps(world, build["buildid"])
    assert steps["tests"]["results"] == 3 and steps["tests"]["hidden"]
    assert steps["collect-shards"]["results"] == 0
    assert steps["coverage"]["results"] == 0, steps["coverage"]["state_string"]
