"""Coverage of new code: changed lines × coverage data × blame → a Report (no printing here)."""
from __future__ import annotations

from pathlib import Path

from greenlight.coverage.blame import blame_lines
from greenlight.coverage.changed_lines import changed_lines, dirty_paths, work_tree_root
from greenlight.coverage.measured import MeasuredData, Skipped
from greenlight.coverage.report import FileReport, Report
from greenlight.errors import UsageError


def diff_coverage(repo_dir: Path, base: str | None, head: str, *,
                  data_file: Path | None = None, config_file: Path | None = None,
                  fail_under: float = 100.0,
                  extensions: tuple[str, ...] = (".py",), combine: bool = False) -> Report:
    """Measure how much of what base..head added or changed the tests executed.

    ``base`` None (or all zeros) is a first push: every line of head is new. ``combine``
    first folds parallel data files (``.coverage.*``) into the data file. The work tree at
    ``repo_dir`` must hold head's version of the changed files (it is what coverage measured).
    """
    if not 0 <= fail_under <= 100:
        raise UsageError(f"--fail-under {fail_under} is not a percentage between 0 and 100")
    repo_dir = work_tree_root(Path(repo_dir))
    rng, changes = changed_lines(repo_dir, base, head, extensions)
    report = Report(rng.base, rng.head, rng.compared_with, fail_under, [],
                    changed_files=len(changes))
    if not changes:
        return report
    measured = MeasuredData(repo_dir, data_file, config_file, combine)
    in_scope = []
    for change in changes:
        reason = measured.scope(change.path)
        if reason:
            report.skipped.append(Skipped(change.path, reason))
        else:
            in_scope.append(change)
    dirty = dirty_paths(repo_dir, rng.head, {c.path for c in in_scope})
    if dirty:
        raise UsageError(f"the work tree at {repo_dir} differs from head {rng.head[:12]} in "
                         f"{dirty[0]!r}" + (f" and {len(dirty) - 1} more" if len(dirty) > 1
                                            else "")
                         + ": check out head, run the tests under coverage, then re-run")
    measured.check_fresh([c.path for c in in_scope])
    measures = measured.measure_many([(c.path, c.lines) for c in in_scope])
    for change, measure in zip(in_scope, measures):
        if not measure.statements:
            report.skipped.append(Skipped(change.path, measure.note or "no new executable lines"))
            continue
        report.files.append(FileReport(measure, change.old_path))
    wanted = {}
    for file in report.files:
        m = file.measure
        lines = {m.changed_in[s][0] for s in set(m.missing) | set(m.partial)}
        wanted[file.path] = sorted(lines)
    origins = blame_lines(repo_dir, rng, wanted, {f.path for f in report.files if f.old_path})
    for file in report.files:
        file.origins = origins.get(file.path, {})
    return report
