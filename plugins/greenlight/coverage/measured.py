"""What coverage.py measured on the changed lines: the only module that reads coverage data.

It goes through coverage's own API (``Coverage.load()``, ``CoverageData`` lines and arcs and the
Python file reporter), so the target's configuration applies exactly as ``coverage report`` would
apply it: omit/include/source, ``exclude_lines`` and ``# pragma: no cover``, ``relative_files``,
``[paths]`` remapping. A changed line that is not executable (comment, blank, docstring,
``else:``) maps to no statement; a changed line inside a multi-line statement maps to the
statement's first line, so the statement counts once however many of its lines changed.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException, NotPython
from coverage.files import GlobMatcher, PathAliases, prep_patterns
from coverage.python import PythonFileReporter
from coverage.results import analysis_from_file_reporter

from greenlight.coverage.combine import combine_parallel
from greenlight.errors import UsageError

CONFIG_FILES = (".coveragerc", ".coveragerc.toml", "setup.cfg", "tox.ini", "pyproject.toml")


@dataclass
class FileMeasure:
    """Coverage of the new statements of one file (line numbers are statements' first lines)."""

    path: str
    statements: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)                # every changed line
    changed_in: dict[int, list[int]] = field(default_factory=dict)  # statement -> changed lines
    partial: dict[int, list[int]] = field(default_factory=dict)     # branch line -> missed dests
    branches: int = 0
    branches_covered: int = 0
    in_data: bool = True
    source_lines: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Skipped:
    """A changed file that is out of coverage's scope, and why."""

    path: str
    reason: str


def _data_path(repo_dir: Path, data_file: Path | None, cov_config_data: str) -> Path:
    path = Path(data_file) if data_file else repo_dir / cov_config_data
    path = path if path.is_absolute() else (Path.cwd() / path)
    if path.is_file():
        return path
    pieces = sorted(path.parent.glob(path.name + ".*"))
    if pieces:
        raise UsageError(
            f"no combined coverage data at {path}, but {len(pieces)} parallel data file(s) "
            f"such as {pieces[0].name} exist: run `coverage combine` in {path.parent} first")
    raise UsageError(
        f"no coverage data at {path}: run the tests under coverage first (for example "
        "`coverage run -m pytest`, then `coverage combine` with parallel = true), or pass --data")


def _matcher(patterns: list[str] | None, name: str) -> GlobMatcher | None:
    return GlobMatcher(prep_patterns(patterns), name) if patterns else None


def _source_roots(config: coverage.CoverageConfig, repo_dir: Path) -> list[str]:
    """Directories that ``source``/``source_pkgs`` put in scope (packages as dotted paths)."""
    roots = []
    for entry in list(config.source or []) + list(config.source_pkgs or []):
        candidate = Path(entry) if os.path.isabs(entry) else repo_dir / entry
        if not candidate.exists():
            candidate = repo_dir / entry.replace(".", os.sep)
        if not candidate.exists() and Path(str(candidate) + ".py").exists():
            candidate = Path(str(candidate) + ".py")
        roots.append(os.path.realpath(candidate))
    return roots


class MeasuredData:
    """A loaded coverage data file plus the configuration that applies to the target."""

    def __init__(self, repo_dir: Path, data_file: Path | None, config_file: Path | None,
                 combine: bool = False):
        data_file = Path(data_file).absolute() if data_file else None  # relative to the caller
        self._args = (repo_dir, data_file, config_file)
        self.repo_dir = Path(os.path.realpath(repo_dir))
        if config_file is not None:
            config_file = Path(config_file).resolve()
            if not config_file.is_file():
                raise UsageError(f"coverage config {config_file} does not exist; "
                                 "pass --config FILE of the target's coverage settings")
        with contextlib.chdir(self.repo_dir):
            try:
                self.cov = coverage.Coverage(
                    data_file=None, config_file=str(config_file) if config_file else True)
                self.config = self.cov.config
                if combine:
                    combine_parallel(data_file or self.repo_dir / self.config.data_file,
                                     str(config_file) if config_file else True)
                data_path = _data_path(self.repo_dir, data_file, self.config.data_file)
                self.cov = coverage.Coverage(
                    data_file=str(data_path),
                    config_file=str(config_file) if config_file else True)
                self.cov.load()
                data = self.cov.get_data()
                # One bulk read into memory: coverage's file-backed data opens a connection
                # per query, which dominated on pushes of hundreds of files.
                aliases = PathAliases(relative=self.config.relative_files)
                for paths in (self.config.paths or {}).values():
                    for pattern in paths[1:]:
                        aliases.add(pattern, paths[0])
                mapped = coverage.CoverageData(no_disk=True)
                mapped.update(data, map_path=aliases.map if self.config.paths else None)
                data = mapped
            except CoverageException as exc:
                raise UsageError(f"cannot read coverage data or config in {self.repo_dir}: "
                                 f"{exc}") from exc
            self.omit = _matcher((self.config.run_omit or []) + (self.config.report_omit or []),
                                 "omit")
            self.include = _matcher((self.config.run_include or [])
                                    + (self.config.report_include or []), "include")
        self.data = data
        self.data_path = data_path
        self.sources = _source_roots(self.config, self.repo_dir)
        self.keys: dict[str, str] = {}
        for key in data.measured_files():
            self.keys[os.path.realpath(os.path.join(self.repo_dir, key))] = key
        self._check_tree()

    def _check_tree(self) -> None:
        if not self.keys:
            raise UsageError(f"coverage data {self.data_path} measured no files: the tests did "
                             "not run under coverage, or `source`/`include` excludes everything")
        inside = [p for p in self.keys if p.startswith(str(self.repo_dir) + os.sep)]
        if not inside:
            example = next(iter(self.keys.values()))
            raise UsageError(
                f"coverage data {self.data_path} was recorded in another tree (e.g. {example!r} "
                f"is not under {self.repo_dir}): set relative_files = true or a [paths] "
                "remapping in the coverage config, or pass --repo DIR of the measured checkout")

    def scope(self, rel_path: str) -> str | None:
        """Why a changed file is out of coverage's scope, or None when it is in scope."""
        full = os.path.realpath(self.repo_dir / rel_path)
        if self.omit and self.omit.match(full):
            return "omitted by the coverage configuration"
        if self.include and not self.include.match(full):
            return "not included by the coverage configuration"
        if self.sources and full not in self.keys and not any(
                full == root or full.startswith(root + os.sep) for root in self.sources):
            return "outside the configured coverage source"
        return None

    def measure(self, rel_path: str, changed: frozenset[int]) -> FileMeasure:
        """Coverage of the statements that ``changed`` lines of ``rel_path`` belong to."""
        full = os.path.realpath(self.repo_dir / rel_path)
        key = self.keys.get(full)
        result = FileMeasure(rel_path, changed=sorted(changed), in_data=key is not None)
        with contextlib.chdir(self.repo_dir):
            reporter = PythonFileReporter(full, self.cov)
            try:
                analysis = analysis_from_file_reporter(
                    self.data, self.config.precision, reporter, key or full)
                parser = reporter.parser
            except NotPython as exc:
                result.note = f"not measurable as Python: {exc}"
                return result
            except OSError as exc:
                raise UsageError(f"cannot read {full}: {exc}; run from a checkout of head") from exc
        result.source_lines = reporter.source().splitlines()
        self._check_version(rel_path, key, len(result.source_lines))
        for line in sorted(changed):
            first = parser.first_line(line)
            if first in analysis.statements:
                result.changed_in.setdefault(first, []).append(line)
        result.statements = sorted(result.changed_in)
        result.missing = sorted(set(result.statements) & analysis.missing)
        if analysis.has_arcs:
            missed_arcs = analysis.missing_branch_arcs()
            for line in result.statements:
                exits = analysis.exit_counts.get(line, 0)
                if exits < 2 or line in analysis.no_branch:
                    continue
                missed = sorted(missed_arcs.get(line, []))
                result.branches += exits
                result.branches_covered += exits - len(missed)
                if missed and line not in analysis.missing:
                    result.partial[line] = missed
        if key is None:
            result.note = "never imported while coverage was measuring"
        return result

    def check_fresh(self, rel_paths: list[str]) -> None:
        """Refuse data older than the sources it should describe (edited after the tests ran):
        its line numbers would be matched against code that was never measured."""
        data_time = self.data_path.stat().st_mtime_ns
        newer = [p for p in rel_paths
                 if (self.repo_dir / p).exists() and (self.repo_dir / p).stat().st_mtime_ns
                 > data_time]
        if newer:
            raise UsageError(
                f"coverage data {self.data_path} is older than {newer[0]!r}"
                + (f" and {len(newer) - 1} more changed file(s)" if len(newer) > 1 else "")
                + ": the file changed after the tests ran; re-run the tests under coverage")

    def measure_many(self, items: list[tuple[str, frozenset[int]]]) -> list[FileMeasure]:
        """``measure`` for many files; large pushes are spread over the CPUs (coverage's
        parser costs a few milliseconds per file, and a big push touches hundreds)."""
        workers = min(os.cpu_count() or 1, len(items) // PARALLEL_FROM)
        if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return [self.measure(path, lines) for path, lines in items]
        chunks = [items[i::workers] for i in range(workers)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=self._args) as pool:
            results = list(pool.map(_measure_chunk, chunks))
        by_path = {m.path: m for chunk in results for m in chunk}
        return [by_path[path] for path, _ in items]

    def _check_version(self, rel_path: str, key: str | None, n_lines: int) -> None:
        if key is None:
            return
        executed = self.data.lines(key) or []
        beyond = [n for n in executed if n > n_lines]
        if beyond:
            raise UsageError(
                f"coverage data {self.data_path} is from another version of {rel_path}: it ran "
                f"line {max(beyond)} of a {n_lines}-line file; re-run the tests on head")


PARALLEL_FROM = 48  # files per worker process below which one process is quicker
_worker: MeasuredData | None = None


def _start_worker(repo_dir: Path, data_file: Path | None, config_file: Path | None) -> None:
    global _worker
    _worker = MeasuredData(repo_dir, data_file, config_file)


def _measure_chunk(items: list[tuple[str, frozenset[int]]]) -> list[FileMeasure]:
    assert _worker is not None
    return [_worker.measure(path, lines) for path, lines in items]
