"""The last green (fully verified) sha of each branch, kept by the master.

Gates on "new code" (coverage, schema review) measure from the last green sha rather than from
the previous push: when pushes pile up and Buildbot collapses them, or a red push is followed by
a fix, no pushed line escapes the gate.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path


def read_green(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_green(path: Path, branch: str) -> str | None:
    return read_green(path).get(branch)


def record_green(path: Path, branch: str, sha: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_green(path)
        data[branch] = sha
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
