"""SSH transport: releases go over rsync, host operations over ssh, all as argument lists.

The host agent (host_agent.py with switch.py) is sent on stdin to ``python3 -`` so a host needs
nothing but Python 3 and sshd. The remote command line is built with shlex.join from validated
values, so no sha, branch or host name ever reaches a shell unquoted.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from greenlight.deploy.hosts import Host
from greenlight.deploy.transport_errors import HostError

CONNECT_TIMEOUT = 5


def control_dir() -> str:
    """A private directory for ssh's multiplexing sockets (one per user)."""
    path = os.path.join(tempfile.gettempdir(), f"greenlight-ssh-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def agent_source() -> str:
    """switch.py + host_agent.py as one script (their __future__ lines dropped)."""
    here = Path(__file__).parent
    parts = []
    for name in ("switch.py", "host_agent.py"):
        text = (here / name).read_text()
        parts.append("\n".join(line for line in text.splitlines()
                               if not line.startswith("from __future__")))
    return "from __future__ import annotations\n" + "\n".join(parts) + "\n"


class SshTransport:
    """One ssh host: ``ssh`` for operations, ``rsync -e ssh`` for release files."""

    def __init__(self, host: Host, timeout: float = 600.0):
        self.host = host
        self.timeout = timeout

    def ssh_options(self) -> list[str]:
        h = self.host
        opts = ["-p", str(h.ssh_port), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", f"StrictHostKeyChecking={h.strict_host_key_checking}",
                "-o", "LogLevel=ERROR",
                # one TCP connection per host, reused by every operation and rsync
                "-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir()}/%C",
                "-o", "ControlPersist=60"]
        if h.identity_file:
            opts += ["-i", h.identity_file, "-o", "IdentitiesOnly=yes"]
        if h.known_hosts_file:
            opts += ["-o", f"UserKnownHostsFile={h.known_hosts_file}"]
        if h.user:
            opts += ["-l", h.user]
        return opts

    def agent(self, op: str, *args: str) -> dict:
        remote = shlex.join([self.host.remote_python, "-", self.host.path, op, *args])
        argv = ["ssh", *self.ssh_options(), self.host.address, "--", remote]
        try:
            proc = subprocess.run(argv, input=agent_source().encode(), capture_output=True,
                                  timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise HostError(self.host.name, f"{op} timed out after {self.timeout}s") from None
        out = proc.stdout.decode("utf-8", "replace").strip()
        try:
            result = json.loads(out.splitlines()[-1]) if out else None
        except json.JSONDecodeError:
            result = None
        if proc.returncode == 255 or result is None:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise HostError(self.host.name, f"ssh to {self.host.address}:{self.host.ssh_port} "
                            f"failed ({op}, exit {proc.returncode}): {err or out}")
        if "error" in result:
            raise HostError(self.host.name, f"{op} failed: {result['error']}")
        return result

    def upload(self, sha: str, staging: Path) -> None:
        """rsync the staged export into releases/<sha>/ (begun, with its marker)."""
        user = f"{self.host.user}@" if self.host.user else ""
        dest = f"{user}{self.host.address}:{self.host.path.rstrip('/')}/releases/{sha}/"
        argv = ["rsync", "-a", "-s", "-e", shlex.join(["ssh", *self.ssh_options()]),
                f"{staging}/", dest]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise HostError(self.host.name, f"rsync timed out after {self.timeout}s") from None
        if proc.returncode != 0:
            raise HostError(self.host.name, f"rsync to {dest} failed (exit {proc.returncode}): "
                            f"{proc.stderr.decode('utf-8', 'replace').strip()}")

    def run(self, argv: list[str], cwd: str | None = None, timeout: float | None = None
            ) -> dict:
        return self.agent("run", json.dumps({"argv": argv, "cwd": cwd, "timeout": timeout}))

