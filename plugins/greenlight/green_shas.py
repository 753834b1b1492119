"""The last green (fully verified) sha of each branch, kept by the master.

Gates on "new code" (coverage, schema review) measure from the last green sha rather than from
the previous push: when pushes pile up and Buildbot collapses them, or a red push is followed by
a fix, no pushed line escapes the gate.

Last green only moves forward along the branch's history: builds can finish out of order (an
older commit's build ending after a newer one's), and moving back would make the next gate
measure from the older commit, judging lines that were already judged. A candidate that is an
ancestor of the current last green is refused; a descendant replaces it; one that shares no line
with it (the branch was force-pushed onto other history, where the old green no longer is)
replaces it too, or last green would never move again on that branch.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

# is_ancestor(a, b): does b's history contain a? (a commit is its own ancestor)
Ancestry = Callable[[str, str], bool]


def read_green(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_green(path: Path, branch: str) -> str | None:
    return read_green(path).get(branch)


def moves_forward(current: str | None, candidate: str, is_ancestor: Ancestry) -> bool:
    """Whether ``candidate`` may replace ``current`` as the branch's last green (pure: the
    ancestry comes from the caller's repository)."""
    if current is None or current == candidate:
        return True
    if is_ancestor(current, candidate):
        return True
    return not is_ancestor(candidate, current)


def advance_green(path: Path, branch: str, sha: str, is_ancestor: Ancestry
                  ) -> tuple[bool, str | None]:
    """Make ``sha`` the branch's last green if it moves forward; return whether it did and the
    last green found before (which stays when ``sha`` is older). The decision is taken under the file's lock, so
    two builds finishing at the same moment cannot both win against a stale reading.
    ``is_ancestor`` may raise (e.g. KeyError when it only knows answers for the last green it
    was prepared for); nothing is written then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_green(path)
        current = data.get(branch)
        if not moves_forward(current, sha, is_ancestor):
            return False, current
        data[branch] = sha
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
        return True, current
