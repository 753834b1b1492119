"""The client's spool: batches the store could not take yet, on disk, replayed in order.

Each process appends to its own file (JSON lines, one batch per line, fsync'd per batch) and
holds an exclusive ``flock`` on it while it lives. A file whose lock can be taken belongs to a
process that is gone: the next client on the same store adopts it and drains it first, so a
killed process loses only what was still in memory. Replays are exactly-once because every
batch carries an id the store remembers (:meth:`ExperimentStore.write_events`' ``batch_id``).
The spool is bounded: a batch that does not fit is refused and the caller counts it as lost.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger("greenlight.experiments")

DEFAULT_DIR = "var/experiments-spool"
ENV_DIR = "GREENLIGHT_EXPERIMENTS_SPOOL"
DEFAULT_LIMIT_BYTES = 256 * 1024 * 1024
SUFFIX = ".spool"


def default_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def store_tag(url: str) -> str:
    """Spool files are named for their store, so a client only adopts batches meant for the
    store it writes to."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


class _File:
    """One locked spool file and how far it has been replayed."""

    def __init__(self, path: Path, handle: IO[bytes]):
        self.path = path
        self.handle = handle
        self.offset = 0  # bytes already replayed

    @classmethod
    def take(cls, path: Path, create: bool) -> "_File | None":
        """Open and lock ``path``; None when another live process holds it."""
        try:
            handle = open(path, "ab+" if create else "rb+")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return cls(path, handle)

    def size(self) -> int:
        return os.fstat(self.handle.fileno()).st_size

    def pending(self) -> bool:
        return self.offset < self.size()

    def next_entry(self) -> tuple[dict | None, int] | None:
        """The next complete line from ``offset``: (entry or None if unreadable, end offset).
        None at the end, or before a torn last line (a process killed mid-append)."""
        self.handle.seek(self.offset)
        line = self.handle.readline()
        if not line.endswith(b"\n"):
            return None
        end = self.offset + len(line)
        try:
            return json.loads(line), end
        except ValueError:
            log.warning("experiments: spool %s: unreadable line at byte %d skipped",
                        self.path, self.offset)
            return None, end

    def close(self, delete: bool) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        self.handle.close()


class Spool:
    """This process's spool file (made on first use) plus the orphans it adopted."""

    def __init__(self, directory: Path | str, url: str,
                 limit_bytes: int = DEFAULT_LIMIT_BYTES):
        self.directory = Path(directory)
        self.limit_bytes = limit_bytes
        self.tag = store_tag(url)
        self.name = f"{self.tag}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._own: _File | None = None
        self._adopted: list[_File] = []
        self.adopt_orphans()

    def adopt_orphans(self) -> int:
        """Take every unlocked spool file of this store (oldest first); returns how many."""
        if not self.directory.is_dir():
            return 0
        held = {f.path for f in self._adopted} | ({self._own.path} if self._own else set())
        paths = sorted(self.directory.glob(f"{self.tag}-*{SUFFIX}"),
                       key=lambda p: p.stat().st_mtime if p.exists() else 0)
        taken = 0
        for path in paths:
            if path in held:
                continue
            found = _File.take(path, create=False)
            if found is None:
                continue
            if found.size() == 0:
                found.close(delete=True)
                continue
            log.warning("experiments: adopting spool %s (%d bytes) left by a stopped process; "
                        "it is replayed before new data", path.name, found.size())
            self._adopted.append(found)
            taken += 1
        return taken

    def pending(self) -> bool:
        return bool(self._adopted) or (self._own is not None and self._own.pending())

    def append(self, entry: dict, force: bool = False) -> bool:
        """Add a batch at the end (durable when this returns True). False when the spool is
        full; ``force`` admits small bookkeeping entries anyway."""
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        if self._own is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._own = _File.take(self.directory / f"{self.name}{SUFFIX}", create=True)
            if self._own is None:  # pragma: no cover - a uuid-named file another process holds
                raise OSError(f"spool file {self.name} is locked by another process")
        own = self._own
        if not force and own.size() - own.offset + len(line) > self.limit_bytes:
            return False
        own.handle.seek(0, os.SEEK_END)
        own.handle.write(line)
        own.handle.flush()
        os.fsync(own.handle.fileno())
        return True

    def bytes_pending(self) -> int:
        total = sum(f.size() - f.offset for f in self._adopted)
        return total + (self._own.size() - self._own.offset if self._own else 0)

    def drain(self, deliver: Callable[[dict], None]) -> int:
        """Replay entries in order through ``deliver`` until the spool is empty or ``deliver``
        raises (the exception propagates; the failed entry stays first). Returns how many
        entries were delivered."""
        delivered = 0
        while self._adopted:
            current = self._adopted[0]
            delivered += self._drain_file(current, deliver)
            current.close(delete=True)
            self._adopted.pop(0)
        if self._own is not None:
            delivered += self._drain_file(self._own, deliver)
            self._own.handle.truncate(0)
            os.fsync(self._own.handle.fileno())
            self._own.offset = 0
        return delivered

    @staticmethod
    def _drain_file(current: _File, deliver: Callable[[dict], None]) -> int:
        delivered = 0
        while (item := current.next_entry()) is not None:
            entry, end = item
            if entry is not None:
                deliver(entry)
                delivered += 1
            current.offset = end
        return delivered

    def close(self) -> None:
        """Release the files; this process's own file is deleted only when fully replayed."""
        for adopted in self._adopted:
            adopted.close(delete=False)
        self._adopted.clear()
        if self._own is not None:
            self._own.close(delete=not self._own.pending())
            self._own = None
