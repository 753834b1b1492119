"""The shard fan-out on a real Buildbot master with three shard workers (plus one for the
parent build): PlanShards -> TriggerShards -> CollectShards, shard builds from
shard_builder_steps, in a master.cfg of the user's own. One test fails for real, one only on its
first run (flaky). (A worker lost mid-shard, its shard retried on another, is checked on
Greenlight's own configuration in tests/master/test_remote_workers_e2e.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from greenlight.shards.durations import DurationStore
from greenlight.shards.flaky import FlakyLedger

from tests.conftest import child_env, free_ports, scaled, wait_for
from tests.world import REST_HEADERS

REST = requests.Session()   # uncompressed replies (see tests.world.World.rest_get)
REST.headers.update(REST_HEADERS)

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent

SUITE = '''
from pathlib import Path

import pytest

MARKER = Path({marker!r})


@pytest.mark.parametrize("k", range(6))
def test_fine(k):
    pass


def test_broken():
    assert 1 == 2, "a real failure"


def test_flaky():
    first = not MARKER.exists()
    MARKER.write_text("x")
    assert not first, "fails on its first run only"

'''

MASTER_CFG = '''
from buildbot.plugins import schedulers, steps, util, worker
from greenlight.steps.shards import (CollectShards, PlanShards, TriggerShards,
                                     shard_builder_steps)

PY, SUITE, REPORTS, DB = {py!r}, {suite!r}, {reports!r}, {db!r}
PYTEST = [PY, "-m", "pytest", "-p", "no:cacheprovider"]
c = BuildmasterConfig = {{}}
c["buildbotNetUsageData"] = None
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["protocols"] = {{"pb": {{"port": "tcp:{pb}:interface=127.0.0.1"}}}}
c["www"] = {{"port": "tcp:{web}:interface=127.0.0.1", "plugins": {{}}}}
c["buildbotURL"] = "http://127.0.0.1:{web}/"
c["workers"] = [worker.Worker(n, "pw", max_builds=1) for n in ("parent", "s1", "s2", "s3")]


def copy_suite():
    return steps.ShellCommand(name="suite", command=["cp", "-r", SUITE + "/.", "."],
                              logEnviron=False, haltOnFailure=True)


verify = util.BuildFactory([
    copy_suite(),
    PlanShards(shards=3, durations_db=DB, haltOnFailure=True,
               collect_command=[*PYTEST, "--collect-only", "-q"]),
    TriggerShards(schedulerName="shards"),
    CollectShards(reports_dir=REPORTS, durations_db=DB, alwaysRun=True),
])
shard = util.BuildFactory([copy_suite(), *shard_builder_steps(PYTEST, REPORTS)])
c["builders"] = [
    util.BuilderConfig(name="verify", workernames=["parent"], factory=verify),
    util.BuilderConfig(name="shard", workernames=["s1", "s2", "s3"], factory=shard,
                       collapseRequests=False),
]
c["schedulers"] = [
    schedulers.ForceScheduler(name="force", builderNames=["verify"]),
    schedulers.Triggerable(name="shards", builderNames=["shard"]),
]
'''


def _env() -> dict:
    env = child_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["START_TIMEOUT"] = f"{scaled(30):.0f}"   # `buildbot start` gives up after 10 s of silence
    return env


def _run(*argv: str) -> None:
    proc = subprocess.run(list(argv), env=_env(), capture_output=True, text=True,
                          timeout=scaled(120))
    assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"


@pytest.fixture
def master(tmp_path):
    web, pb = free_ports(2)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_suite.py").write_text(SUITE.format(marker=str(tmp_path / "marker")))
    db = f"sqlite:///{tmp_path}/store.sqlite"
    basedir = tmp_path / "master"
    _run(str(BIN / "buildbot"), "create-master", "-q", str(basedir))
    (basedir / "master.cfg").write_text(MASTER_CFG.format(
        py=sys.executable, suite=str(suite),
        reports=str(tmp_path / "reports"), db=db, pb=pb, web=web))
    started = []
    try:
        _run(str(BIN / "buildbot"), "start", str(basedir))
        started.append(basedir)
        (tmp_path / "workers").mkdir()

        def start_worker(name: str) -> Path:   # each start waits for its worker to attach
            wdir = tmp_path / "workers" / name
            _run(str(BIN / "buildbot-worker"), "create-worker", "-q", str(wdir),
                 f"127.0.0.1:{pb}", name, "pw")
            started.append(wdir)
            _run(str(BIN / "buildbot-worker"), "start", str(wdir))
            return wdir

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(start_worker, ("parent", "s1", "s2", "s3")))
        url = f"http://127.0.0.1:{web}/api/v2/"
        _wait(lambda: {w["name"] for w in REST.get(url + "workers", timeout=scaled(5)).json()
                       ["workers"] if w["connected_to"]} >= {"parent", "s1", "s2", "s3"}, 90)
        yield url, db
    finally:
        def stop(path: Path) -> None:
            tool = "buildbot" if path == basedir else "buildbot-worker"
            subprocess.run([str(BIN / tool), "stop", str(path)], env=_env(),
                           capture_output=True, timeout=scaled(60))

        with ThreadPoolExecutor(4) as pool:   # the workers side by side, then the master
            list(pool.map(stop, [p for p in started if p != basedir]))
        if basedir in started:
            stop(basedir)


def _wait(condition, timeout: float):
    """``wait_for`` with this module's "not yet" answers: the master still starting, a reply
    that is not the JSON expected yet."""
    return wait_for(condition, timeout, getattr(condition, "__name__", "a condition"),
                    interval=0.5, retry_on=(requests.RequestException, ValueError, KeyError,
                                            IndexError))


def _force_verify(url: str) -> int:
    builders = REST.get(url + "builders", timeout=scaled(5)).json()["builders"]
    verify_id = next(b["builderid"] for b in builders if b["name"] == "verify")
    response = REST.post(url + "forceschedulers/force", timeout=scaled(10), json={
        "id": 1, "jsonrpc": "2.0", "method": "force",
        "params": {"builderid": str(verify_id), "username": "", "reason": "e2e"}})
    assert response.ok, response.text
    return verify_id


def _outcome(url: str, verify_id: int, number: int = 1) -> tuple[dict, dict, list[dict]]:
    """Wait for parent build ``number``; return it, its properties and all shard builds."""
    def finished_parent():
        builds = REST.get(url + f"builders/{verify_id}/builds",
                          timeout=scaled(5)).json()["builds"]
        mine = [b for b in builds if b["number"] == number]
        return mine[0] if mine and mine[0]["complete"] else None

    parent = _wait(finished_parent, 240)
    props = REST.get(url + f"builds/{parent['buildid']}/properties",
                         timeout=scaled(5)).json()["properties"][0]
    shard_builds = REST.get(url + "builds", timeout=scaled(5),
                                params={"property": "shard_index"}).json()["builds"]
    return parent, props, [b for b in shard_builds if b["builderid"] != verify_id]


def test_three_shards_one_verdict(master):
    url, db = master
    parent, props, shard_builds = _outcome(url, _force_verify(url))
    assert len(shard_builds) == 3
    assert sorted(b["properties"]["shard_index"][0] for b in shard_builds) == [1, 2, 3]
    # One combined verdict: the real failure fails the parent and is named; the flaky test is
    # recorded, and every collected test ran exactly once.
    assert parent["results"] == 2, parent  # FAILURE
    assert props["shards_failed_tests"][0] == ["test_suite.py::test_broken"]
    assert props["shards_flaky_tests"][0] == ["test_suite.py::test_flaky"]
    assert props["shards_union_ok"][0] is True
    assert "1 failed: test_suite.py::test_broken" in parent["state_string"]
    assert [e.test_id for e in FlakyLedger(db).flakiest()] == ["test_suite.py::test_flaky"]
    # The next plan has every test's duration from this build.
    assert len(DurationStore(db).durations()) == 8

