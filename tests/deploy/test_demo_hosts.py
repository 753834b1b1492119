"""Demo hosts: restarts of the same host from several processes at once (a deploy killed while
its restart command still runs, then the recovery's restart) leave one server, named by the pid
file, serving the current release."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from greenlight.deploy import demo_hosts as demo
from greenlight.errors import SettingsError

from tests.conftest import free_port, scaled, wait_for
from tests.deploy.conftest import TINY_SERVER


def _release(host: Path, name: str) -> None:
    release = host / "releases" / name
    (release / "app").mkdir(parents=True)
    (release / "app" / "__init__.py").write_text("")
    (release / "app" / "server.py").write_text(TINY_SERVER.replace(
        "ThreadingHTTPServer((a.host", "import time; time.sleep(0.2)\n"
        "ThreadingHTTPServer((a.host"))   # a slow start-up widens the window for a race
    (release / "VERSION").write_text(name)


def test_concurrent_restarts_leave_one_server_named_by_the_pid_file(tmp_path):
    host, port = tmp_path / "host01", free_port()
    _release(host, "r1")
    os.symlink("releases/r1", host / "current")
    try:
        restarts = [subprocess.Popen([sys.executable, "-m", "greenlight.deploy.demo_hosts",
                                      "restart", str(host), "--port", str(port)])
                    for _ in range(4)]
        assert [p.wait(timeout=scaled(60)) for p in restarts] == [0, 0, 0, 0]
        pid = demo.read_pid(host)
        assert pid is not None, "the pid file names a server that is not running"
        assert demo.served_release(host) == "r1"
        # the last one started may still be binding its port
        body = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/version",
                                             timeout=scaled(2)).text, 10,
                        "the restarted server to answer", interval=0.05,
                        retry_on=(requests.ConnectionError,))
        assert body == "r1"
        assert _servers(host, port) == [pid]
    finally:
        demo.stop_host(host)
        for stray in _servers(host, port):   # what a failed run may have left
            os.kill(stray, signal.SIGKILL)


UP = ("import sys; from greenlight.deploy.demo_hosts import start_demo_hosts; "
      "start_demo_hosts(sys.argv[1], 1, int(sys.argv[2]))")


def test_up_starting_the_hosts_while_one_restarts_leaves_one_server(tmp_path):
    """`greenlight up` starts every demo host that has a release and no server; run while a
    deploy restarts one, it must not start a second server between the restart's stop and
    its start."""
    host, port = tmp_path / "host01", free_port()   # start_demo_hosts' name for host 1
    _release(host, "r1")
    os.symlink("releases/r1", host / "current")
    try:
        both = [[sys.executable, "-m", "greenlight.deploy.demo_hosts", "restart", str(host),
                 "--port", str(port)], [sys.executable, "-c", UP, str(tmp_path), str(port)]]
        started = [subprocess.Popen(both[i % 2]) for i in range(8)]
        assert [p.wait(timeout=scaled(60)) for p in started] == [0] * 8
        pid = demo.read_pid(host)
        assert pid is not None, "the pid file names a server that is not running"
        body = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/version",
                                             timeout=scaled(2)).text, 10,
                        "the server to answer", interval=0.05,
                        retry_on=(requests.ConnectionError,))
        assert body == "r1"
        assert _servers(host, port) == [pid]
    finally:
        demo.stop_host(host)
        for stray in _servers(host, port):
            os.kill(stray, signal.SIGKILL)


def _servers(host: Path, port: int) -> list[int]:
    """This host's servers: the processes serving ``port`` from one of its releases (another
    test, or another checkout's suite on the machine, may run a server for the same port
    number that has not bound it yet, from its own folder)."""
    found = subprocess.run(["pgrep", "-f", f"app.server --host 127.0.0.1 --port {port}"],
                           capture_output=True, text=True).stdout.split()
    mine = []
    for pid in map(int, found):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue   # gone meanwhile
        if cwd.is_relative_to(host.resolve()):
            mine.append(pid)
    return mine


def test_experiments_env_of_a_broken_settings_file_raises(tmp_path, monkeypatch):
    """A settings file that does not parse is an error to show, not 'no experiments here'."""
    broken = tmp_path / "greenlight.toml"
    broken.write_text("[experiments\ndb_url = 1\n", encoding="utf-8")
    monkeypatch.delenv(demo.EXPERIMENTS_ENV, raising=False)
    monkeypatch.setenv("GREENLIGHT_SETTINGS", str(broken))
    with pytest.raises(SettingsError, match="not valid TOML"):
        demo.experiments_env(tmp_path / "hosts" / "host-01")
    monkeypatch.delenv("GREENLIGHT_SETTINGS")
    monkeypatch.setattr("greenlight.settings.active_path", lambda: None)
    assert demo.experiments_env(tmp_path / "elsewhere") == {}  # the defaults apply: not theirs
