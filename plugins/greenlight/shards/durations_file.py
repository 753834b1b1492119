"""pytest-split's ``.test_durations`` file: read and write, with no database dependency.

Kept apart from the store so the pytest plugin can read a durations file in any project's
virtualenv, where SQLAlchemy may not be installed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from greenlight.errors import UsageError


def read_durations_file(path: str | Path) -> dict[str, float]:
    """Read pytest-split's ``.test_durations`` (a JSON object id -> seconds, or the older list of
    ``[id, seconds]`` pairs)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read durations file ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); expected pytest-split's "
                         ".test_durations format {{\"test id\": seconds}}") from exc
    if isinstance(data, list):
        try:
            data = {str(k): v for k, v in data}
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path}: a list must hold [test id, seconds] pairs") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object mapping test id to seconds")
    out = {}
    for test_id, seconds in data.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise UsageError(f"{path}: duration of {test_id!r} must be a number >= 0, "
                             f"got {seconds!r}")
        out[str(test_id)] = float(seconds)
    return out


def write_durations_file(path: str | Path, durations: Mapping[str, float]) -> None:
    """Write pytest-split's format (sorted, indented, like ``pytest --store-durations``)."""
    Path(path).write_text(json.dumps(dict(sorted(durations.items())), indent=4) + "\n",
                          encoding="utf-8")
