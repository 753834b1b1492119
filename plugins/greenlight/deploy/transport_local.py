"""Local transport: the host is a directory on this machine (the demo and the embedded default)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from greenlight.deploy import host_agent
from greenlight.deploy.hosts import Host
from greenlight.deploy.transport_errors import HostError


class LocalTransport:
    """Runs the host agent's operations in-process and copies releases with shutil."""

    def __init__(self, host: Host):
        self.host = host

    def agent(self, op: str, *args: str) -> dict:
        try:
            return host_agent.dispatch(self.host.path, op, list(args))
        except (host_agent.AgentError, OSError) as exc:
            raise HostError(self.host.name, f"{op} failed: {exc}") from exc

    def upload(self, sha: str, staging: Path) -> None:
        """Copy the staged export into releases/<sha>/ (already begun, marker inside)."""
        dest = Path(self.host.path, "releases", sha)
        try:
            shutil.copytree(staging, dest, dirs_exist_ok=True, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise HostError(self.host.name, f"copying release {sha} to {dest} failed: {exc}"
                            ) from exc

    def run(self, argv: list[str], cwd: str | None = None, timeout: float | None = None
            ) -> dict:
        return self.agent("run", json.dumps({"argv": argv, "cwd": cwd, "timeout": timeout}))

