"""The one error every transport raises: which host, what failed."""
from __future__ import annotations

from greenlight.errors import GreenlightError


class HostError(GreenlightError):
    """An operation on one host failed (unreachable, command failed, disk full, ...)."""

    def __init__(self, host: str, message: str):
        super().__init__(f"host {host}: {message}")
        self.host = host


class HostDidNotStart(HostError):
    """A host switched to ``release`` did not come up (restart failed or never healthy);
    ``log_tail`` is what its start-up log got meanwhile, ``cause`` its last exception line."""

    def __init__(self, host: str, phase: str, release: str, detail: str, log_tail: str = "",
                 cause: str | None = None, answered: bool = False):
        super().__init__(host, detail)
        self.args = (f"{phase} {host} did not start: {cause or detail}",)
        self.phase, self.release, self.detail = phase, release, detail
        self.log_tail, self.cause, self.answered = log_tail, cause, answered

    @property
    def release_at_fault(self) -> bool:
        """Evidence that the release, not the host or a slow machine, failed: its start-up
        log ends in an exception, or the app answered its health check with an error. A
        health check that only timed out proves nothing about the release."""
        return self.cause is not None or self.answered

    def to_json(self) -> dict:
        return {"host": self.host, "phase": self.phase, "release": self.release,
                "detail": self.detail, "cause": self.cause, "log_tail": self.log_tail,
                "summary": str(self)}
