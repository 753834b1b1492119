"""``greenlight worker create|start|stop DIR``: a Buildbot worker on this machine for a master
on another one, wrapping ``buildbot-worker``.

``create DIR --master HOST:PORT --name N --password-file F`` makes the worker's folder; its
``buildbot.tac`` reads the password from F at every start, so no secret is copied into the
folder or shown on a command line. The master lists the same name and password file under
``[[workers.remote]]``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from greenlight.errors import UsageError

BUILDBOT_WORKER = Path(sys.executable).parent / "buildbot-worker"
PLACEHOLDER = "read-from-password-file"
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MASTER = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("worker", help="create, start or stop a worker for a remote "
                                                  "master (wraps buildbot-worker)")
    verbs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = verbs.add_parser("create", help="make a worker folder")
    create.add_argument("dir", type=Path)
    create.add_argument("--master", required=True, metavar="HOST:PORT",
                        help="the master's worker port ([master] worker_port)")
    create.add_argument("--name", required=True, help="as in the master's [[workers.remote]]")
    create.add_argument("--password-file", required=True, type=Path,
                        help="file holding the worker's password (read at every start)")
    create.add_argument("--use-tls", action="store_true",
                        help="connect with TLS ([master] worker_tls_cert on the master)")
    create.set_defaults(func=_create)
    for action, text in (("start", "start the worker in the background"),
                         ("stop", "stop the worker")):
        sub = verbs.add_parser(action, help=text)
        sub.add_argument("dir", type=Path)
        sub.set_defaults(func=_control)


def tac_reading_password(tac: str, password_file: Path) -> str:
    """``buildbot.tac`` with its literal password replaced by a read of ``password_file``."""
    line = re.compile(rf"^passwd = {re.escape(repr(PLACEHOLDER))}$", re.M)
    if not line.search(tac):
        raise UsageError("buildbot-worker wrote a buildbot.tac without the expected passwd line")
    return line.sub(lambda _: f"with open({str(password_file)!r}) as _f:\n"
                              "    passwd = _f.read().strip()", tac)


def _create(args: argparse.Namespace) -> int:
    if not NAME.match(args.name):
        raise UsageError(f"--name {args.name!r}: letters, digits, '-' and '_' only")
    if not MASTER.match(args.master):
        raise UsageError(f"--master {args.master!r}: expected HOST:PORT")
    password_file = args.password_file.resolve()
    try:
        if not password_file.read_text().strip():
            raise UsageError(f"--password-file {password_file}: empty")
    except OSError as exc:
        raise UsageError(f"--password-file {password_file}: {exc.strerror}") from None
    if (args.dir / "buildbot.tac").exists():
        raise UsageError(f"{args.dir}: already a worker folder (stop it and remove it first)")
    args.dir.parent.mkdir(parents=True, exist_ok=True)
    command = [str(BUILDBOT_WORKER), "create-worker", "--umask=0o022", "--quiet"]
    if args.use_tls:
        command.append("--use-tls")
    proc = subprocess.run([*command, str(args.dir), args.master, args.name, PLACEHOLDER],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"buildbot-worker create-worker failed: "
                         f"{(proc.stderr or proc.stdout).strip()}")
    tac = args.dir / "buildbot.tac"
    tac.write_text(tac_reading_password(tac.read_text(), password_file))
    print(f"worker {args.name} created in {args.dir} for master {args.master}; start it with "
          f"`greenlight worker start {args.dir}`")
    return 0


def _control(args: argparse.Namespace) -> int:
    if not (args.dir / "buildbot.tac").exists():
        raise UsageError(f"{args.dir}: not a worker folder (no buildbot.tac); "
                         "use `greenlight worker create` first")
    # Builds run `greenlight ...` on the worker: the install that runs this command, first.
    env = {**os.environ, "PATH": f"{BUILDBOT_WORKER.parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BUILDBOT_WORKER), args.action, str(args.dir)],
                          capture_output=True, text=True, env=env)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode
