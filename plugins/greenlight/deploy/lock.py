"""One deploy at a time, and when several green commits queue, only the newest deploys.

The lock is fcntl.flock on a lock file: taken atomically by the kernel and released by it when
the holder dies (even by SIGKILL), so there is no stale lock to clean. The queue is one file
holding the newest requested sha, replaced atomically; a waiter that finds a newer request than
its own when it gets the lock steps aside (the newer commit contains it).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path

from greenlight.errors import GreenlightError


class LockBusy(GreenlightError):
    """Another deploy holds the lock and the caller chose not to wait (long enough)."""


class DeployLock:
    """``with DeployLock(path, wait=...)``: exclusive for the process; ``wait`` seconds or None
    for forever, 0 to fail at once."""

    def __init__(self, path: str, wait: float | None = None, poll: float = 0.05):
        self.path = path
        self.wait = wait
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    holder = _read_holder(self.path)
                    os.close(fd)
                    raise LockBusy(f"another deploy holds {self.path}{holder}; "
                                   "wait for it or retry later") from None
                time.sleep(self.poll)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DeployLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(path: str) -> str:
    try:
        info = json.loads(Path(path).read_text() or "{}")
        return f" (pid {info['pid']})" if "pid" in info else ""
    except (OSError, ValueError):
        return ""


class DeployQueue:
    """The newest requested sha, in a file next to the lock (``request`` then ``take``)."""

    def __init__(self, path: str):
        self.path = path

    def request(self, sha: str) -> None:
        """Record ``sha`` as the newest wanted deploy (atomic replace: last writer wins)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        temp = f"{self.path}.{os.getpid()}.tmp"
        with open(temp, "w") as fh:
            json.dump({"sha": sha, "at": time.time()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, self.path)

    def newest(self) -> str | None:
        try:
            return json.loads(Path(self.path).read_text()).get("sha")
        except (OSError, ValueError):
            return None

    def take(self, sha: str) -> bool:
        """Under the lock: True when ``sha`` is still the newest request (then cleared), False
        when a newer one arrived or it was already served by a newer deploy."""
        newest = self.newest()
        if newest != sha:
            return False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        return True
