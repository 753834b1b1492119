"""Picks a host's transport; each has ``agent(op, *args)``, ``upload(sha, dir)``, ``run(argv)``."""
from __future__ import annotations

from typing import Protocol

from greenlight.deploy.hosts import Host
from greenlight.deploy.transport_errors import HostError
from greenlight.deploy.transport_local import LocalTransport
from greenlight.deploy.transport_ssh import SshTransport

__all__ = ["HostError", "Transport", "transport_for"]


class Transport(Protocol):
    host: Host

    def agent(self, op: str, *args: str) -> dict: ...
    def upload(self, sha: str, staging) -> None: ...
    def run(self, argv: list[str], cwd: str | None = None, timeout: float | None = None
            ) -> dict: ...


def transport_for(host: Host) -> Transport:
    """The transport object of a host (local or ssh)."""
    return SshTransport(host) if host.transport == "ssh" else LocalTransport(host)
