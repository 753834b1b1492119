"""Will the project's coverage data combine across checkouts? Checked when shards may run.

A shard runs on another worker, in another build directory. Coverage records absolute paths
unless the project sets ``relative_files = true`` (or remaps with ``[paths]``), so the shards'
data then names files of other trees and the gate refuses it ("recorded in another tree"). The
verify build only fans out once the suite has grown long enough, so a project without the
setting passes for weeks and then fails every build. ``up`` reads the project's coverage
configuration (coverage.py's own reader, coverage's own file order) from the watched
repository and stops with the lines to paste.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from coverage.config import CoverageConfig, config_files_to_try

FIX = """\
The verify build fans its tests out to shards on other checkouts ([shards] count = {count}),
and the project's coverage configuration{where} has neither `relative_files = true` nor a
[paths] remapping: the shards' coverage data would name files of other trees and the gate
would fail. Paste into pyproject.toml:

[tool.coverage.run]
relative_files = true

(or `relative_files = true` under [run] in .coveragerc), or set [shards] count = 1 in the
Greenlight settings to keep every build's tests on one worker."""


def config_file_names() -> list[str]:
    """The files coverage reads its configuration from, in its order."""
    return [name for name, _, _ in config_files_to_try(True)]


def mapping_problem(files: dict[str, str], count: int | str) -> str | None:
    """None when the configuration in ``files`` (name -> text, as in the project's root) maps
    paths across checkouts; else the message with the fix to paste."""
    with tempfile.TemporaryDirectory() as tmp:
        config = CoverageConfig()
        used = None
        for name, our_file, _ in config_files_to_try(True):
            if name not in files:
                continue
            path = Path(tmp, name)
            path.write_text(files[name], encoding="utf-8")
            if config.from_file(str(path), warn=lambda _message: None, our_file=our_file):
                used = name
                break
    if config.relative_files or config.paths:
        return None
    where = f" ({used})" if used else " (none found)"
    return FIX.format(count=f'"{count}"' if isinstance(count, str) else count, where=where)
