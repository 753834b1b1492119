"""The deploy lock (flock across processes), the newest-wins queue, and the atomic switch."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from greenlight.deploy.lock import DeployLock, DeployQueue, LockBusy
from greenlight.deploy.switch import atomic_switch, read_link

from tests.conftest import wait_for

from .conftest import ScriptedJudge

HOLD_LOCK = """
import sys, time
from greenlight.deploy.lock import DeployLock
with DeployLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_lock_is_exclusive_across_processes_and_freed_when_holder_dies(tmp_path):
    path = str(tmp_path / "deploy.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path, "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=f"pid {holder.pid}"):
            DeployLock(path, wait=0.2).acquire()
        holder.kill()  # SIGKILL: the kernel drops the flock, no stale lock to clean
        holder.wait()
        with DeployLock(path, wait=5):
            with pytest.raises(LockBusy):
                DeployLock(path, wait=0).acquire()  # exclusive within one process too
    finally:
        holder.kill()
        holder.wait()


def test_only_one_of_many_racing_threads_holds_the_lock(tmp_path):
    path = str(tmp_path / "deploy.lock")
    inside, peak, lock = [0], [0], threading.Lock()

    def worker():
        with DeployLock(path):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


def test_queue_newest_request_wins(tmp_path):
    queue = DeployQueue(str(tmp_path / "deploy.queue"))
    queue.request("a" * 40)
    queue.request("b" * 40)
    assert not queue.take("a" * 40)  # a newer commit queued behind it: step aside
    assert queue.take("b" * 40)
    assert queue.newest() is None


def test_queued_deploys_only_the_newest_runs(world):
    """Three green commits queue behind a running deploy: only the newest deploys."""
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    shas = [world.commit_app(f"v{i}") for i in (2, 3, 4)]
    results = {}
    gate = DeployLock(world.settings.lock_file)
    gate.acquire()  # a deploy in progress

    def deploy(sha):
        results[sha] = world.deployer(ScriptedJudge("pass")).deploy(sha)

    queue = DeployQueue(os.path.join(world.settings.state_dir, "deploy.queue"))
    threads = []
    for sha in shas:  # queued in commit order while the lock is held
        t = threading.Thread(target=deploy, args=(sha,))
        t.start()
        threads.append(t)
        wait_for(lambda: queue.newest() == sha, 60, f"{sha[:12]} to be queued")
    gate.release()
    for t in threads:
        t.join(60)
    assert [results[s].outcome for s in shas] == ["superseded", "superseded", "success"]
    world.assert_consistent(shas[-1], "v4")


def test_atomic_switch_never_leaves_a_moment_without_a_link(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "releases" / name).mkdir(parents=True)
    atomic_switch(str(tmp_path), "current", "releases/a")
    stop, missing, seen = threading.Event(), [], set()

    def reader():
        while not stop.is_set():
            try:
                seen.add(os.readlink(tmp_path / "current"))
            except FileNotFoundError:
                missing.append(1)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(400):
        atomic_switch(str(tmp_path), "current", f"releases/{'ab'[i % 2]}")
    stop.set()
    t.join()
    assert missing == []
    assert seen == {"releases/a", "releases/b"}
    assert read_link(str(tmp_path), "current") == "releases/b"  # the last of 400
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".current")] == []
