"""Restart the service on one host: stop the server named in the pid file, start the release
``current`` points at. Greenlight runs it on the host after each switch (``restart`` of a
``[[deploy.hosts]]`` table, cwd = the host directory) and then polls ``/healthz`` itself.

    python current/deploy/restart.py --path /srv/lending --port 8080 [--bind 0.0.0.0]

Only the standard library: it runs on the host with the host's Python.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SECONDS = 10


def stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def start(path: Path, port: int, bind: str) -> int:
    release = (path / "current").resolve()
    env = {**os.environ, "PYTHONPATH": str(release / "src"), "LENDING_RELEASE": release.name}
    with open(path / "server.log", "ab") as log:
        # A session of its own and no inherited pipes: the deploy's ssh command returns at once.
        proc = subprocess.Popen([sys.executable, "-m", "lending.serve", "--host", bind,
                                 "--port", str(port)], cwd=release, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    return proc.pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, type=Path, help="the host directory")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args()
    pidfile = args.path / "lending.pid"
    stop(pidfile)
    pid = start(args.path, args.port, args.bind)
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pidfile)
    print(f"lending {(args.path / 'current').resolve().name[:12]} started, pid {pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
