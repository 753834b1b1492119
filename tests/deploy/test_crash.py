"""SIGKILL the deploy at every step: recovery (or the next deploy) leaves every host on
exactly one consistent release, served by its running process."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from greenlight.deploy.ledger import Ledger

from .conftest import ROOT_DIR, ScriptedJudge


def run_killed(world, sha: str, crash_at: str, *judge: str) -> subprocess.CompletedProcess:
    spec = dataclasses.asdict(world.settings)
    path = world.tmp / "settings.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "GREENLIGHT_CRASH_AT": crash_at}
    return subprocess.run([sys.executable, "-m", "tests.deploy.deploy_runner", str(path), sha,
                           *judge], cwd=ROOT_DIR, env=env, capture_output=True, timeout=120)


CRASH_POINTS = [  # (where, judge outcomes, also re-run the deploy afterwards)
    ("after-prepare", ["pass"], False),
    ("before-switch:canary:host01", ["pass"], False),
    ("between-links", ["pass"], True),
    ("after-switch:canary:host01", ["pass"], False),
    ("after-restart:canary:host01", ["pass"], False),
    ("judge", ["pending"], False),
    ("after-switch:rest:host02", ["pass"], True),
    ("after-switch:rollback:host01", ["fail"], False),
]


@pytest.mark.parametrize("crash_at,judge,rerun", CRASH_POINTS,
                         ids=[c for c, _, _ in CRASH_POINTS])
def test_killed_deploy_is_recovered_to_one_release(world_factory, crash_at, judge, rerun):
    world = world_factory(2)
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2")
    proc = run_killed(world, v2, crash_at, *judge)
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)
    ledger = Ledger(world.ledger_url)
    [running] = ledger.unfinished_deploys()
    assert running.sha == v2

    recovered = world.deployer().recover()
    assert [r.deploy_id for r in recovered] == [running.id]
    world.assert_consistent(v1, "v1")
    assert ledger.deploy(running.id).outcome == "interrupted"
    assert ledger.unfinished_deploys() == []

    if crash_at.endswith(":rollback:host01"):
        assert ledger.is_bad(v2)  # marked before the rollback began
    if not rerun:
        return
    # and the deploy, run again, completes
    again = world.deployer(ScriptedJudge("pass")).deploy(v2)
    assert again.outcome == "success", again.message
    world.assert_consistent(v2, "v2")


def test_next_deploy_recovers_by_itself(world_factory):
    world = world_factory(2)
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2")
    assert run_killed(world, v2, "after-switch:canary:host01", "pass").returncode == -9
    v3 = world.commit_app("v3")
    result = world.deployer(ScriptedJudge("pass")).deploy(v3)
    assert result.outcome == "success"
    assert result.previous_sha == v1  # the interrupted v2 canary was rolled back first
    world.assert_consistent(v3, "v3")


def test_interrupted_rollback_is_completed_not_undone(world_factory):
    world = world_factory(2)
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2")
    assert world.deployer(ScriptedJudge("pass")).deploy(v2).ok
    os.environ["GREENLIGHT_CRASH_AT"] = "after-switch:rollback:host02"
    try:
        pid = os.fork()
        if pid == 0:  # the child rolls back and is killed after switching host02
            try:
                world.deployer().rollback(to=v1)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
    finally:
        del os.environ["GREENLIGHT_CRASH_AT"]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    [recovered] = world.deployer().recover()
    assert recovered.sha == v1
    world.assert_consistent(v1, "v1")
