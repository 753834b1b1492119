"""Local demo hosts: a directory each (releases/, current) serving the app on a loopback port.

Each host runs ``python -m app.server --host 127.0.0.1 --port P`` with its working directory set
to the release ``current`` points at, so a restart (stop, then start from the new ``current``)
is what puts a switched release live, exactly as on a real host. Pid files make stop and
restart work from any process, including the deploy's restart command::

    python -m greenlight.deploy.demo_hosts restart HOST_DIR --port P
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from greenlight.deploy.hosts import Host, demo_hosts
from greenlight.errors import GreenlightError
from greenlight.settings import load as load_settings

PID_FILE = "server.pid"
LOCK_FILE = ".host.lock"
LOG_FILE = "server.log"
EXPERIMENTS_ENV = "GREENLIGHT_EXPERIMENTS_DB"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie or a recycled pid is not our server
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"app.server" in cmdline
    except OSError:
        return True


def read_pid(host_dir: str | Path) -> int | None:
    try:
        pid = int(Path(host_dir, PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def stop_host(host_dir: str | Path, grace: float = 5.0) -> bool:
    """SIGTERM the host's server (SIGKILL after ``grace``); True if one was running."""
    pid = read_pid(host_dir)
    if pid is None:
        Path(host_dir, PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            _reap(pid)
            time.sleep(0.02)
    Path(host_dir, PID_FILE).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def experiments_env(host_dir: str | Path) -> dict[str, str]:
    """$GREENLIGHT_EXPERIMENTS_DB for the app on a demo host: the caller's own value, else the
    ``[experiments] db_url`` of the settings whose state_dir holds the host (so the app, the
    master's Experiments page and the CLI share one store). Hosts elsewhere (a test's tmp
    folder) get none, and their app serves control without recording anything."""
    if os.environ.get(EXPERIMENTS_ENV):
        return {}
    settings = load_settings()  # none applying = the embedded defaults; a broken file raises
    if not Path(host_dir).resolve().is_relative_to(settings.state_dir.resolve()):
        return {}
    return {EXPERIMENTS_ENV: settings.expand(settings["experiments"]["db_url"])}


def start_host(host_dir: str | Path, port: int, python: str = sys.executable) -> int:
    """Start the server from ``current`` (cwd = the resolved release dir); returns its pid."""
    host_dir = Path(host_dir)
    current = host_dir / "current"
    if not current.exists():
        raise GreenlightError(f"{host_dir}: no `current` release to serve; deploy one first")
    release = current.resolve()
    log = open(host_dir / LOG_FILE, "ab")
    try:
        proc = subprocess.Popen(
            [python, "-m", "app.server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=release, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
            env={**os.environ, **experiments_env(host_dir), "PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        log.close()
    temp = host_dir / f".{PID_FILE}.{os.getpid()}.tmp"
    temp.write_text(f"{proc.pid}\n")
    temp.replace(host_dir / PID_FILE)
    return proc.pid


def restart_host(host_dir: str | Path, port: int, python: str = sys.executable) -> int:
    """Stop, then start from ``current``, holding the host's restart lock: a restart left
    running by a killed deploy and the recovery's own restart of the same host must not
    interleave (both would start a server, one would lose the port and exit, and the pid file
    could name the one that exited)."""
    with host_lock(host_dir):
        stop_host(host_dir)
        return start_host(host_dir, port, python)


@contextlib.contextmanager
def host_lock(host_dir: str | Path):
    """Exclusive use of a host's server (start, stop, restart) across processes; released
    when the holder exits, however it exits. A host dir that does not exist has nothing to
    guard."""
    if not Path(host_dir).is_dir():
        yield
        return
    with open(Path(host_dir, LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def served_release(host_dir: str | Path) -> str | None:
    """The release directory name the running server was started from (its cwd)."""
    pid = read_pid(host_dir)
    if pid is None:
        return None
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).name
    except OSError:
        return None


def start_demo_hosts(base: str | Path, n: int, first_port: int) -> list[Host]:
    """Create ``n`` host dirs under ``base`` and start each that has a ``current`` release.

    Hosts without a release yet are started by their first deploy (its restart command).
    """
    hosts = demo_hosts(str(Path(base).absolute()), n, first_port)
    for host in hosts:
        Path(host.path, "releases").mkdir(parents=True, exist_ok=True)
        # Under the host's lock, like every other start and stop: `up` run while a deploy
        # restarts the host would otherwise start a second server between the restart's stop
        # and its start (one loses the port and exits; the pid file may name that one).
        with host_lock(host.path):
            if Path(host.path, "current").exists() and read_pid(host.path) is None:
                start_host(host.path, host.port)
    return hosts


def stop_demo_hosts(base: str | Path) -> int:
    """Stop every demo host server under ``base``; returns how many were running."""
    stopped = 0
    base = Path(base)
    if not base.is_dir():
        return 0
    for host_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        stopped += stop_host(host_dir)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenlight.deploy.demo_hosts")
    parser.add_argument("action", choices=["start", "stop", "restart"])
    parser.add_argument("host_dir")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.action == "restart":
            restart_host(args.host_dir, args.port)
        else:
            with host_lock(args.host_dir):
                if args.action == "stop":
                    stop_host(args.host_dir)
                else:
                    start_host(args.host_dir, args.port)
    except GreenlightError as exc:
        print(f"demo host {args.host_dir}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
