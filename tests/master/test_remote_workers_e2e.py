"""Workers on other machines: each made and started by ``greenlight worker`` in its own
network namespace with its own address, connected to the master over a veth pair (a real
non-loopback interface), listed under ``[[workers.remote]]``. A sharded verify build spreads
over them; a worker killed mid-shard has its shard retried on another, and the build is green.
Needs root for ``ip netns``; skipped with the reason otherwise."""
from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
from buildbot.process.results import RETRY
import requests

from tests.conftest import ROOT, git, wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e
GREENLIGHT = str(ROOT / ".venv" / "bin" / "greenlight")
WORKERS = ("far-1", "far-2", "far-3")

HOLD_TEST = '''
import os
import time
from pathlib import Path

RUN = Path({run!r})


def test_held_once_while_the_test_kills_this_worker():
    armed = RUN / "armed"
    if not armed.exists():
        return
    armed.unlink()
    (RUN / "running-in").write_text(os.getcwd())   # the work dir names the worker
    deadline = time.monotonic() + 120
    while not (RUN / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
'''


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Namespace:
    """A network namespace joined to this host by a veth pair: host side .1, inside .2."""

    def __init__(self, index: int, subnet: int):
        tag = f"{os.getpid() % 100000}{index}"
        self.name, self.host_if, self.inner_if = f"gl{tag}", f"glh{tag}", f"gln{tag}"
        self.host_ip, self.inner_ip = f"10.{subnet}.{index}.1", f"10.{subnet}.{index}.2"
        ip("netns", "add", self.name)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.inner_if)
        ip("link", "set", self.inner_if, "netns", self.name)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        for args in (("addr", "add", f"{self.inner_ip}/30", "dev", self.inner_if),
                     ("link", "set", self.inner_if, "up"), ("link", "set", "lo", "up")):
            ip("netns", "exec", self.name, "ip", *args)

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=120)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def namespaces_permitted() -> str | None:
    probe = f"glprobe{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"network namespaces not permitted here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture(scope="module")
def far(tmp_path_factory):
    reason = namespaces_permitted()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("remote-workers")
    remote = ""
    for name in WORKERS:
        (base / f"{name}.secret").write_text(f"pw-{name}-{random.random()}\n")
        remote += (f'\n[[workers.remote]]\nname = "{name}"\npassword_file = '
                   f'"{base / (name + ".secret")}"\nmax_builds = 2\n'
                   f'properties = {{ site = "netns" }}\n')
    world = World(base, workers=0, shards=2, master='worker_bind = "0.0.0.0"\n',
                  workers_extra=remote)
    subnet = random.randrange(200, 250)
    spaces, dirs = [], {}
    try:
        world.up()
        port = world.settings["master"]["worker_port"]
        for index, name in enumerate(WORKERS, 1):
            space = Namespace(index, subnet)
            spaces.append(space)
            dirs[name] = base / "machines" / name
            made = space.run(GREENLIGHT, "worker", "create", str(dirs[name]), "--master",
                             f"{space.host_ip}:{port}", "--name", name, "--password-file",
                             str(base / f"{name}.secret"))
            assert made.returncode == 0, made.stderr
            started = space.run(GREENLIGHT, "worker", "start", str(dirs[name]))
            assert started.returncode == 0, started.stdout + started.stderr
        world.spaces, world.dirs = spaces, dirs
        yield world
    finally:
        for name, path in dirs.items():
            subprocess.run([GREENLIGHT, "worker", "stop", str(path)], capture_output=True)
        world.down()
        for space in spaces:
            space.delete()


def connected(world) -> dict[str, dict]:
    return {w["name"]: w for w in world.api("workers")["workers"] if w["connected_to"]}


def test_sharded_build_over_namespaced_workers_survives_a_killed_worker(far, tmp_path):
    wait_for(lambda: set(WORKERS) <= set(connected(far)), 60, "the three workers to connect",
             retry_on=(requests.RequestException,))
    run = tmp_path / "run"
    run.mkdir()
    (run / "armed").write_text("")
    clone = far.clone(tmp_path / "c")
    (clone / "tests" / "test_remote_hold.py").write_text(HOLD_TEST.format(run=str(run)))
    sha = commit_all(clone, "tests: one test held while a worker is killed")
    assert far.push(clone, "main").returncode == 0
    try:
        where = Path(wait_for(lambda: (run / "running-in").exists() and
                              (run / "running-in").read_text(), 240, "the held shard to start"))
    except AssertionError:
        builds = [(b["number"], b["state_string"]) for b in far.builds_for(sha)]
        shards = [(b["number"], b["state_string"]) for b in
                  far.api("builders/shard/builds")["builds"]]
        raise AssertionError(f"no held shard; verify builds {builds}, shards {shards}") from None
    victim = next(name for name in WORKERS if str(far.dirs[name]) in str(where))
    pid = int((far.dirs[victim] / "twistd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    (run / "release").write_text("")   # the orphaned test process ends too
    wait_for(lambda: [b for b in far.builds_for(sha) if b["complete"]
                          and b["results"] == 0], 300, "a green verify build",
             retry_on=(requests.RequestException,))
    shards = far.api("builders/shard/builds", property="*")["builds"]
    by_worker = {w["workerid"]: w["name"] for w in far.api("workers")["workers"]}
    lost = [b for b in shards if by_worker[b["workerid"]] == victim and b["results"] == RETRY]
    assert lost, [(by_worker[b["workerid"]], b["results"]) for b in shards]
    index = lost[0]["properties"]["shard_index"][0]
    again = [b for b in shards if b["properties"]["shard_index"][0] == index
             and b["results"] == 0 and b["buildid"] > lost[0]["buildid"]]
    assert again and by_worker[again[-1]["workerid"]] != victim
    # the shards ran on the namespaced workers, not on this host
    assert {by_worker[b["workerid"]] for b in shards} <= set(WORKERS)
    twistd = (far.settings.path("master", "basedir") / "twistd.log").read_text()
    assert "listens on 0.0.0.0 without TLS" in twistd
    assert git(far.bare, "rev-parse", "main") == sha
