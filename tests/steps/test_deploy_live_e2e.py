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


# The test polls the running deploy with short read timeouts: a reply that stalls is asked
# again rather than waited on for half a minute, which would be the whole judge window.
POLL_READ_TIMEOUT = 5


def get(world, path: str, **params) -> dict:
    return world.api(path, read_timeout=POLL_READ_TIMEOUT, **params)


def deploy_step(world, build: dict) -> dict | None:
    steps = get(world, f"builds/{build['buildid']}/steps")["steps"]
    return next((s for s in steps if s["name"] == "deploy"), None)


def phases_log(world, step: dict) -> str:
    logs = get(world, f"steps/{step['stepid']}/logs")["logs"]
    log = next((entry for entry in logs if entry["name"] == "phases"), None)
    return world.rest_get(f"logs/{log['logid']}/raw", POLL_READ_TIMEOUT).text if log else ""


def test_phases_appear_in_the_log_while_the_deploy_runs(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nWatched live.\n")
    sha = commit_all(clone, "README: one more line")
    assert world.push(clone, "main").returncode == 0
    # Polled from the push on (no wait for the verify build first): every poll is a chance to
    # see the canary line in the judge's 30 s, and each one is counted for the failure message.
    state: dict = {"polls": 0, "last": "no deploy build yet"}

    def canary_shown_while_running() -> bool:
        state["polls"] += 1
        builds = world.builds_for(sha, "deploy", POLL_READ_TIMEOUT)
        running = [b for b in builds if not b["complete"]]
        step = deploy_step(world, running[0]) if running else None
        if step is None or not step["started_at"] or step["complete"]:
            if builds and not running:  # nothing left to wait for: say how it ended
                ended = deploy_step(world, builds[-1])
                raise AssertionError(
                    f"the deploy of {sha[:10]} ended before the test saw its canary line "
                    f"({state['polls']} polls; last seen: {state['last']}): "
                    f"{builds[-1]['state_string']}\n"
                    + (phases_log(world, ended) if ended else ""))
            return False
        state["seen"] = phases_log(world, step)
        state["after"] = get(world, f"steps/{step['stepid']}")["steps"][0]
        state["step"] = step
        state["last"] = f"summary {state['after']['state_string']!r}, phases log " \
                        f"{state['seen'][-300:]!r}"
        # The step's summary follows too (updated a moment after the log).
        return "[canary] ok" in state["seen"] and not state["after"]["complete"] \
            and state["after"]["state_string"].startswith("deploy: [")

    wait_for(canary_shown_while_running, 240, "the canary phase in a running deploy's log",
             interval=0.5, retry_on=(requests.RequestException,))
    seen, after, step = state["seen"], state["after"], state["step"]
    assert seen.index("[prepare] ok") < seen.index("[canary] ok")
    assert "[judge]" not in seen   # the judge is still watching the canary
    # The summary is a phase that has ended, in the build page's words.
    assert after["state_string"][len("deploy: "):] in phases_log(world, step).splitlines()
    assert world.wait_build(sha)["results"] == 0   # the green verify build that triggered it
