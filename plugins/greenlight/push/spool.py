"""A directory of pending changes: nothing is lost when the master is down.

Each change is one JSON file written atomically (temp file, fsync, rename), named so that a
directory listing is the delivery order. Delivery holds an exclusive lock so that two hooks
running at once never send the same file twice.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator


def spool_change(spool: Path, change: dict) -> Path:
    spool.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{change['properties']['greenlight_push_id'][:12]}.json"
    tmp = spool / f".{name}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(change, fh)
        fh.flush()
        os.fsync(fh.fileno())
    final = spool / name
    os.replace(tmp, final)
    dir_fd = os.open(spool, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


RAW_SUFFIX = ".refs"


def keep_raw(spool: Path, ref_lines: str) -> Path:
    """Keep the ``<old> <new> <ref>`` lines of a push the hook could not turn into changes
    (its code failed): written atomically, turned into changes by the next hook run or
    ``greenlight flush``. hooks/post-receive writes the same files with the standard library
    alone when it cannot import Greenlight at all."""
    spool.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}{RAW_SUFFIX}"
    tmp = spool / f".{name}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(ref_lines)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, spool / name)
    return spool / name


def raw_pending(spool: Path) -> list[Path]:
    """Kept ref updates, oldest first."""
    if not spool.is_dir():
        return []
    return sorted(p for p in spool.glob(f"*{RAW_SUFFIX}") if not p.name.startswith("."))


def pending(spool: Path) -> list[Path]:
    if not spool.is_dir():
        return []
    return sorted(p for p in spool.glob("*.json") if not p.name.startswith("."))


@contextlib.contextmanager
def _locked(spool: Path, wait: bool) -> Iterator[bool]:
    spool.mkdir(parents=True, exist_ok=True)
    with open(spool / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


def flush(spool: Path, send: Callable[[list[dict]], None], wait: bool = False) -> tuple[int, int]:
    """Send pending changes oldest first; stop at the first failure (order matters).

    Returns (delivered, still pending). ``send`` raises on failure.
    """
    delivered = 0
    with _locked(spool, wait) as got_lock:
        if not got_lock:  # another hook is delivering right now; it will send ours too
            return 0, len(pending(spool))
        for path in pending(spool):
            try:
                change = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                path.rename(path.with_suffix(".corrupt"))
                continue
            try:
                send([change])
            except Exception as exc:
                if getattr(exc, "permanent", False):  # malformed: set aside, keep the queue moving
                    path.rename(path.with_suffix(".rejected"))
                    continue
                break
            path.unlink()
            delivered += 1
    return delivered, len(pending(spool))
