"""The one error every transport raises: which host, what failed."""
from __future__ import annotations

from greenlight.errors import GreenlightError


class HostError(GreenlightError):
    """An operation on one host failed (unreachable, command failed, disk full, ...)."""

    def __init__(self, host: str, message: str):
        super().__init__(f"host {host}: {message}")
        self.host = host
