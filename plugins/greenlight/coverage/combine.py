"""Combine coverage data from several processes, workers or shards into one data file.

coverage's own combine applies the ``[paths]`` remapping of the configuration, so shards run in
different checkouts land on the same file names; all inputs must share the ``branch`` setting.
"""
from __future__ import annotations

import os
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException

from greenlight.errors import UsageError


def combine_data(paths: list[Path], out: Path, config_file: Path | str | bool | None = None,
                 keep: bool = True) -> Path:
    """Write the union of the data files (or directories of ``.coverage.*`` files) in ``paths``
    to ``out``; the inputs are kept. ``config_file``: the target's coverage config (for
    ``[paths]``), True to search the current directory, None/False for none. ``keep=False``
    deletes the inputs afterwards, as ``coverage combine`` does."""
    if not paths:
        raise UsageError("no coverage data files to combine: pass at least one path")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"coverage data to combine does not exist: {', '.join(missing)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    config = str(config_file) if isinstance(config_file, (str, Path)) else bool(config_file)
    cov = coverage.Coverage(data_file=str(out), config_file=config)
    try:
        cov.combine([str(Path(p).resolve()) for p in paths], strict=True, keep=keep)
    except CoverageException as exc:
        raise UsageError(f"cannot combine coverage data {', '.join(map(str, paths))}: {exc} "
                         "(every shard must use the same coverage config, e.g. branch = true)"
                         ) from exc
    cov.save()
    return out


def combine_parallel(data: Path, config_file: Path | str | bool | None = True) -> int:
    """Fold the parallel pieces ``<data>.*`` (and ``<data>`` if present) into ``<data>``, as
    ``coverage combine`` would; returns how many pieces were folded (0: nothing to do)."""
    data = Path(data)
    pieces = [p for p in sorted(data.parent.glob(data.name + ".*")) if p.is_file()]
    if not pieces:
        return 0
    merged = data.with_name(data.name + "-greenlight-combined")
    combine_data(pieces + ([data] if data.is_file() else []), merged, config_file)
    os.replace(merged, data)
    for piece in pieces:
        piece.unlink()
    return len(pieces)
