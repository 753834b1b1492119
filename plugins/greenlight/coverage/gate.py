"""Coverage of new code: changed lines × coverage data × blame → a Report (no printing here).

The work splits in two. ``prepare`` does everything that depends on the code only (the changed
lines, coverage's static analysis of each changed file, who wrote each changed statement) and
can run while the tests run; ``diff_coverage(prepared=...)`` then only loads the data, joins and
reports. Without a prepared file, or with one that no longer matches (another head, base,
checkout, configuration or file content), ``diff_coverage`` computes everything itself: the
results are the same either way.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from greenlight.coverage.measured import (
    OUTSIDE_SOURCE,
    MeasuredData,
    Skipped,
    Target,
    changed_statements,
)
from greenlight.coverage.report import FileReport, Origin, Report
from greenlight.coverage.static import StaticAnalysis, blob_sha, config_key
from greenlight.errors import UsageError
from greenlight.git import is_null_sha

PREPARED_SCHEMA = "greenlight.coverage-prepared/1"
PREPARED_FILE = ".greenlight-coverage-prepared.json"
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class StalePrepared(Exception):
    """The prepared analysis does not describe this run; the reason is the message."""


@dataclass
class Prepared:
    """A prepared analysis kept in the process that made it (``greenlight coverage --run``):
    the JSON form plus what the gate would otherwise rebuild from it (each file's analysis and
    changed statements), and each analysed file's size and mtime when it was read — a file the
    tests rewrote is caught by a stat instead of re-reading and hashing every file."""

    data: dict
    statics: dict[str, StaticAnalysis] = field(default_factory=dict)
    changed_in: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    target: Target | None = None   # the configuration read by the preparation


def _check_threshold(fail_under: float) -> None:
    if not 0 <= fail_under <= 100:
        raise UsageError(f"--fail-under {fail_under} is not a percentage between 0 and 100")


def _dirty_error(repo_dir: Path, head: str, dirty: list[str]) -> UsageError:
    return UsageError(f"the work tree at {repo_dir} differs from head {head[:12]} in "
                      f"{dirty[0]!r}" + (f" and {len(dirty) - 1} more" if len(dirty) > 1
                                         else "")
                      + ": check out head, run the tests under coverage, then re-run")


def diff_coverage(repo_dir: Path, base: str | None, head: str, *,
                  data_file: Path | None = None, config_file: Path | None = None,
                  fail_under: float = 100.0,
                  extensions: tuple[str, ...] = (".py",), combine: bool = False,
                  prepared: Path | Prepared | None = None, with_source: bool = True) -> Report:
    """Measure how much of what base..head added or changed the tests executed.

    ``base`` None (or all zeros) is a first push: every line of head is new. ``combine``
    first folds parallel data files (``.coverage.*``) into the data file. The work tree at
    ``repo_dir`` must hold head's version of the changed files (it is what coverage measured).
    ``prepared``: a file written by ``prepare`` for the same range (or ``prepare_in_memory``'s
    result); when it does not match, everything is recomputed and ``Report.prepared_note`` says
    why. ``with_source``: keep each
    file's source lines (only the HTML report shows them).
    """
    _check_threshold(fail_under)
    note = ""
    if prepared is not None:
        kept = prepared if isinstance(prepared, Prepared) else None
        try:
            return _gate_prepared(kept.data if kept else load_prepared(prepared),
                                  Path(repo_dir), base, head, data_file, config_file,
                                  fail_under, extensions, combine, with_source, kept)
        except StalePrepared as exc:
            name = "kept in memory" if kept else str(prepared)
            note = f"prepared analysis {name} not used ({exc}); recomputed"
    report = _gate_fresh(Path(repo_dir), base, head, data_file, config_file, fail_under,
                         extensions, combine, with_source)
    report.prepared_note = note
    return report


def _gate_fresh(repo_dir: Path, base: str | None, head: str, data_file: Path | None,
                config_file: Path | None, fail_under: float, extensions: tuple[str, ...],
                combine: bool, with_source: bool) -> Report:
    from greenlight.coverage.blame import blame_lines
    from greenlight.coverage.changed_lines import changed_lines, dirty_paths, work_tree_root

    repo_dir = work_tree_root(repo_dir)
    rng, changes = changed_lines(repo_dir, base, head, extensions)
    report = Report(rng.base, rng.head, rng.compared_with, fail_under, [],
                    changed_files=len(changes))
    if not changes:
        return report
    target = Target(repo_dir, config_file)
    measured = MeasuredData(target, data_file, combine)
    in_scope = []
    for change in changes:
        reason = measured.scope(change.path)
        if reason:
            report.skipped.append(Skipped(change.path, reason))
        else:
            in_scope.append(change)
    dirty = dirty_paths(repo_dir, rng.head, {c.path for c in in_scope})
    if dirty:
        raise _dirty_error(repo_dir, rng.head, dirty)
    measured.check_fresh([c.path for c in in_scope])
    statics = target.analyse_many([c.path for c in in_scope], measured.data.has_arcs())
    _add_files(report, measured, [(c.path, c.lines, c.old_path, s, None)
                                  for c, s in zip(in_scope, statics)], with_source)
    wanted = _blame_wanted(report)
    origins = blame_lines(repo_dir, rng, wanted, {f.path for f in report.files if f.old_path})
    for file in report.files:
        file.origins = origins.get(file.path, {})
    return report


def _add_files(report: Report, measured: MeasuredData, items, with_source: bool) -> None:
    for path, lines, old_path, static, changed_in in items:
        measure = measured.measure(path, lines, static, with_source, changed_in)
        if not measure.statements:
            report.skipped.append(Skipped(path, measure.note or "no new executable lines"))
            continue
        report.files.append(FileReport(measure, old_path))


def _blame_wanted(report: Report) -> dict[str, list[int]]:
    """The lines whose origin a report shows: the first changed line of each uncovered or
    partial statement."""
    wanted = {}
    for file in report.files:
        m = file.measure
        lines = {m.changed_in[s][0] for s in set(m.missing) | set(m.partial)}
        wanted[file.path] = sorted(lines)
    return wanted


# --- prepare: the half that needs no test data ---------------------------------------------

def prepare(repo_dir: Path, base: str | None, head: str, *, config_file: Path | None = None,
            extensions: tuple[str, ...] = (".py",), parallel: bool = False) -> dict:
    """Everything the gate needs that depends on the code only, as a JSON-able dict: the range,
    the changed lines, coverage's static analysis of each changed file (keyed by the file's
    blob id and the configuration's hash) and the origin of each changed statement.
    ``parallel``: spread the analysis over the CPUs (off by default: it runs beside the tests)."""
    return prepare_in_memory(repo_dir, base, head, config_file=config_file,
                             extensions=extensions, parallel=parallel).data


def prepare_in_memory(repo_dir: Path, base: str | None, head: str, *,
                      config_file: Path | None = None, extensions: tuple[str, ...] = (".py",),
                      parallel: bool = False) -> Prepared:
    """``prepare``, keeping the analysis objects for a gate in the same process."""
    from greenlight.coverage.blame import blame_lines
    from greenlight.coverage.changed_lines import changed_lines, dirty_paths, work_tree_root

    root = work_tree_root(Path(repo_dir))
    rng, changes = changed_lines(root, base, head, extensions)
    target = Target(root, config_file)
    branch = True   # arcs too, whatever the config says: `coverage run --branch` may add them
    scopes = {c.path: target.static_scope(c.path) for c in changes}
    analysed = [c for c in changes if scopes[c.path] in (None, OUTSIDE_SOURCE)]
    dirty = dirty_paths(root, rng.head, {c.path for c in analysed})
    if dirty:
        raise _dirty_error(root, rng.head, dirty)
    blobs, stats = {}, {}
    for change in analysed:   # read before the analysis: a later edit can only look stale
        with open(target.full_path(change.path), "rb") as f:
            st = os.fstat(f.fileno())
            blobs[change.path] = blob_sha(f.read())
        stats[change.path] = (st.st_mtime_ns, st.st_size)
    statics = dict(zip((c.path for c in analysed),
                       target.analyse_many([c.path for c in analysed], branch, parallel)))
    wanted, changed_in = {}, {}
    for change in analysed:
        changed_in[change.path] = changed_statements(statics[change.path], change.lines)
        if statics[change.path].arcs_ is not None:
            statics[change.path].destinations()   # what the join needs, built off its path
        if changed_in[change.path]:
            wanted[change.path] = sorted({lines[0] for lines in changed_in[change.path].values()})
    origins = blame_lines(root, rng, wanted, {c.path for c in analysed if c.old_path})
    table: dict = {}
    files = []
    for change in changes:
        entry = {"path": change.path, "old_path": change.old_path,
                 "lines": sorted(change.lines), "scope": scopes[change.path]}
        if change.path in statics:
            entry.update(blob=blobs[change.path], static=statics[change.path].to_json(),
                         origins=[[n, table.setdefault(o, len(table))]
                                  for n, o in sorted(origins.get(change.path, {}).items())])
        files.append(entry)
    return Prepared({
        "schema": PREPARED_SCHEMA, "repo": str(root),
        "requested": {"base": None if is_null_sha(base) else base, "head": head},
        "base": rng.base, "head": rng.head, "compared_with": rng.compared_with,
        "config": config_key(target.config, extensions), "branch": branch,
        "changed_files": len(changes),
        "origins": [[o.commit, o.author, o.email, o.summary] for o in table],
        "files": files,
    }, statics, changed_in, stats, target)


def save_prepared(prepared: dict, path: Path) -> None:
    """Write atomically (a gate never reads half a file), compact (a program reads it)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(prepared, separators=(",", ":")), encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc


def load_prepared(path: Path) -> dict:
    try:
        prepared = json.loads(Path(path).read_text(encoding="ascii"))
    except FileNotFoundError as exc:
        raise StalePrepared("no such file: `greenlight coverage prepare` did not run or "
                            "failed") from exc
    except (OSError, ValueError) as exc:
        raise StalePrepared(f"unreadable: {exc}") from exc
    if not isinstance(prepared, dict) or prepared.get("schema") != PREPARED_SCHEMA:
        raise StalePrepared(f"not a {PREPARED_SCHEMA} file")
    return prepared


def _unchanged(full: str, blob: str, stat: tuple[int, int] | None) -> bool:
    """Is the file at ``full`` still the analysed blob? With the size and mtime seen when it
    was read (same process), a stat answers; otherwise read and hash it."""
    try:
        if stat is not None:
            st = os.stat(full)
            return (st.st_mtime_ns, st.st_size) == stat
        with open(full, "rb") as f:
            return blob_sha(f.read()) == blob
    except OSError:
        return False


def _same_revision(given: str | None, requested: str | None, resolved: str | None,
                   resolve) -> bool:
    """Does ``given`` name the commit the prepared file resolved? Full shas compare as text;
    anything else (a branch name may have moved) is resolved again with git."""
    if is_null_sha(given):
        return requested is None
    if requested is None:
        return False
    if _FULL_SHA.match(given):
        return given == resolved
    return resolve(given) == resolved


def _gate_prepared(prep: dict, repo_dir: Path, base: str | None, head: str,
                   data_file: Path | None, config_file: Path | None, fail_under: float,
                   extensions: tuple[str, ...], combine: bool, with_source: bool,
                   kept: Prepared | None = None) -> Report:
    root = os.path.realpath(repo_dir)
    repo = None

    def resolve(rev: str) -> str:
        nonlocal repo
        from greenlight.coverage.changed_lines import open_repo, resolve_commit
        repo = repo or open_repo(Path(root))
        return resolve_commit(repo, rev, "revision")

    if root != prep["repo"]:
        from greenlight.coverage.changed_lines import work_tree_root
        if str(work_tree_root(Path(root))) != prep["repo"]:
            raise StalePrepared(f"prepared in another checkout ({prep['repo']})")
        root = prep["repo"]
    if not _same_revision(head, prep["requested"]["head"], prep["head"], resolve):
        raise StalePrepared(f"prepared for head {prep['head'][:12]}, not {head}")
    if not _same_revision(base, prep["requested"]["base"], prep["base"], resolve):
        raise StalePrepared(f"prepared for base {(prep['base'] or '(first push)')[:12]}, "
                            f"not {base or '(first push)'}")
    report = Report(prep["base"], prep["head"], prep["compared_with"], fail_under, [],
                    changed_files=prep["changed_files"])
    if not prep["files"]:
        return report
    if kept and kept.target is not None and kept.target.args_key == (root, config_file):
        target = kept.target   # same checkout and config file: read once, by the preparation
    else:
        target = Target(Path(root), config_file)
    if config_key(target.config, extensions) != prep["config"]:
        raise StalePrepared("the coverage configuration, the checked file endings or the "
                            "coverage/Python version changed")
    for entry in prep["files"]:
        if "blob" in entry and not _unchanged(target.full_path(entry["path"]), entry["blob"],
                                              kept.stats.get(entry["path"]) if kept else None):
            raise StalePrepared(f"{entry['path']!r} is not the version that was analysed")
    measured = MeasuredData(target, data_file, combine)
    if measured.data.has_arcs() and not prep["branch"]:
        raise StalePrepared("prepared without branch analysis, but the data has branches")
    in_scope = []
    for entry in prep["files"]:
        reason = measured.scope(entry["path"], entry["scope"])
        if reason:
            report.skipped.append(Skipped(entry["path"], reason))
        else:
            in_scope.append(entry)
    measured.check_fresh([e["path"] for e in in_scope])
    _add_files(report, measured, [
        (e["path"], frozenset(e["lines"]), e["old_path"],
         kept.statics[e["path"]] if kept else StaticAnalysis.from_json(e["static"]),
         kept.changed_in[e["path"]] if kept else None) for e in in_scope], with_source)
    table = [Origin(*o) for o in prep["origins"]]
    by_path = {e["path"]: e for e in in_scope}
    wanted = _blame_wanted(report)
    for file in report.files:
        known = dict(by_path[file.path]["origins"])
        file.origins = {n: table[known[n]] for n in wanted[file.path] if n in known}
    return report
