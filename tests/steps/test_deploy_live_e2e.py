"""On a real master: the deploy step's ``phases`` log shows each phase while the deploy is
still running (read through the REST API mid-deploy), not only once it has ended. (That a red
build still shows the coverage report is checked on the red build of
tests/push/test_push_to_verdict_e2e.py.)"""
from __future__ import annotations

import pytest
import requests

from tests.conftest import free_ports, wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

HOSTS = 2


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    first = free_ports(HOSTS, contiguous=True)[0]
    # A healthy canary stays undecided until its window ends: 30 s of judge in which the
    # earlier phases must already be on the build page. The 60-s health and 120-s restart
    # budgets are ceilings for a loaded machine (as in test_buildbot_e2e.py), never waited for
    # on a quiet one.
    world = World(tmp_path_factory.mktemp("live-deploy"), demo_hosts=HOSTS, extra=f"""
demo_first_port = {first}
canary_fraction = 0.5
observe_seconds = 30
on_window_end = "pass"
demo_traffic_rate = 10
health_interval = 0.1
health_retries = 600
restart_timeout = 120
""")
    world.up()
    yield world
    world.down()


def running_deploy_step(world) -> dict | None:
    builds = world.api("builders/deploy/builds", complete="false")["builds"]
    for build in builds:
        steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
        step = next((s for s in steps if s["name"] == "deploy"), None)
        if step and step["started_at"] and not step["complete"]:
            return step
    return None


def phases_log(world, step: dict) -> str:
    logs = world.api(f"steps/{step['stepid']}/logs")["logs"]
    log = next((entry for entry in logs if entry["name"] == "phases"), None)
    return world.rest_get(f"logs/{log['logid']}/raw").text if log else ""


def test_phases_appear_in_the_log_while_the_deploy_runs(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nWatched live.\n")
    sha = commit_all(clone, "README: one more line")
    assert world.push(clone, "main").returncode == 0
    assert world.wait_build(sha)["results"] == 0
    state: dict = {}

    def canary_shown_while_running() -> bool:
        step = running_deploy_step(world)
        if step is None:
            ended = [b for b in world.builds_for(sha, "deploy") if b["complete"]]
            if ended:  # nothing left to wait for: say how it ended
                steps = world.api(f"builds/{ended[-1]['buildid']}/steps")["steps"]
                deploy = next((s for s in steps if s["name"] == "deploy"), None)
                raise AssertionError(f"the deploy of {sha[:10]} ended before the test saw it "
                                     f"run: {ended[-1]['state_string']}\n"
                                     + (phases_log(world, deploy) if deploy else ""))
            return False
        state["seen"] = phases_log(world, step)
        state["after"] = world.api(f"steps/{step['stepid']}")["steps"][0]
        state["step"] = step
        # The step's summary follows too (updated a moment after the log).
        return "[canary] ok" in state["seen"] and not state["after"]["complete"] \
            and state["after"]["state_string"].startswith("deploy: [")

    wait_for(canary_shown_while_running, 180, "the canary phase in a running deploy's log",
             retry_on=(requests.RequestException,))
    seen, after, step = state["seen"], state["after"], state["step"]
    assert seen.index("[prepare] ok") < seen.index("[canary] ok")
    assert "[judge]" not in seen   # the judge is still watching the canary
    # The summary is a phase that has ended, in the build page's words.
    assert after["state_string"][len("deploy: "):] in phases_log(world, step).splitlines()
