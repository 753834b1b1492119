"""Deploy fixtures: a real git repo with a tiny app, real local hosts serving it on loopback."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from greenlight.deploy import demo_hosts as demo
from greenlight.deploy.hosts import DeploySettings, Host, demo_hosts
from greenlight.deploy.ledger import Ledger
from greenlight.deploy.phases import Deployer

from tests.conftest import free_ports

# A stand-in for the demo app, small enough to start in ~0.1 s: /health answers 500 when the
# release holds a file named UNHEALTHY, /version names the release it was started from.
TINY_SERVER = '''\
import argparse, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code = 500 if os.path.exists("UNHEALTHY") else 200
            body = b"ok\\n"
        else:
            code, body = 200, open("VERSION", "rb").read()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

p = argparse.ArgumentParser()
p.add_argument("--host"); p.add_argument("--port", type=int)
a = p.parse_args()
ThreadingHTTPServer((a.host, a.port), H).serve_forever()
'''


class World:
    """A repo, n hosts, a ledger and a deployer with fast health settings."""

    def __init__(self, tmp_path: Path, repo, n: int):
        self.tmp = tmp_path
        self.repo = repo
        self.base = tmp_path / "hosts"
        ports = free_ports(n)
        self.hosts = [Host(**{**h.__dict__, "port": p,
                              "health_url": f"http://127.0.0.1:{p}/health",
                              "metrics_url": f"http://127.0.0.1:{p}/metrics"})
                      for h, p in zip(demo_hosts(str(self.base), n, 1), ports)]
        self.ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite"
        self.settings = DeploySettings(
            hosts=self.hosts, repo=str(repo.path), branch="main", ledger_url=self.ledger_url,
            state_dir=str(tmp_path / "state"), health_retries=40, health_interval=0.05,
            health_timeout=1.0, observe_seconds=2.0, judge_interval=0.01,
            final_observe_seconds=0.0, parallel=4)

    def commit_app(self, version: str, unhealthy: bool = False, extra: dict | None = None) -> str:
        self.repo.write("app/__init__.py", "")
        self.repo.write("app/server.py", TINY_SERVER)
        self.repo.write("VERSION", version + "\n")
        unhealthy_file = self.repo.path / "UNHEALTHY"
        if unhealthy:
            self.repo.write("UNHEALTHY", "yes\n")
        elif unhealthy_file.exists():
            self.repo.git("rm", "-q", "UNHEALTHY")
        for name, text in (extra or {}).items():
            self.repo.write(name, text)
        return self.repo.commit(f"version {version}")

    def deployer(self, judge=None, settings: DeploySettings | None = None) -> Deployer:
        factory = (lambda: judge) if judge is not None else None
        return Deployer(settings or self.settings, Ledger(self.ledger_url), factory)

    def currents(self) -> dict[str, str | None]:
        out = {}
        for h in self.hosts:
            link = Path(h.path, "current")
            out[h.name] = Path(link.readlink()).name if link.is_symlink() else None
        return out

    def served(self) -> dict[str, str | None]:
        """What each host's running server actually serves (its /version body)."""
        out = {}
        for h in self.hosts:
            try:
                out[h.name] = requests.get(f"http://127.0.0.1:{h.port}/version",
                                           timeout=2).text.strip()
            except requests.RequestException:
                out[h.name] = None
        return out

    def assert_consistent(self, sha: str, version: str) -> None:
        assert set(self.currents().values()) == {sha}, self.currents()
        assert set(self.served().values()) == {version}, self.served()
        for h in self.hosts:
            assert demo.served_release(h.path) == sha
            assert not any(p.joinpath(".greenlight-unfinished").exists()
                           for p in Path(h.path, "releases").iterdir())


@pytest.fixture
def world_factory(tmp_path, make_repo):
    worlds = []

    def make(n: int = 3) -> World:
        w = World(tmp_path / f"w{len(worlds)}", make_repo(), n)
        w.tmp.mkdir()
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        demo.stop_demo_hosts(w.base)


@pytest.fixture
def world(world_factory) -> World:
    return world_factory(3)


class ScriptedJudge:
    """A deterministic judge for the phase tests (the real judge is tested in its own area):
    answers the scripted outcomes in order, then repeats the last one."""

    def __init__(self, *outcomes: str):
        self.outcomes = list(outcomes)
        self.calls: list[tuple[list[str], list[str]]] = []

    def observe(self, canary_hosts, baseline_hosts):
        self.calls.append(([h.name for h in canary_hosts], [h.name for h in baseline_hosts]))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return type("V", (), {"outcome": outcome, "table": f"scripted {outcome}",
                              "as_dict": lambda self: {"outcome": outcome}})()


PYTHON = sys.executable
ROOT_DIR = Path(__file__).resolve().parents[2]
