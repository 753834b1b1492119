"""What coverage.py measured on the changed lines: the only module that reads coverage data.

It goes through coverage's own API (``Coverage.load()``, ``CoverageData`` lines and arcs and the
Python file reporter), so the target's configuration applies exactly as ``coverage report`` would
apply it: omit/include/source, ``exclude_lines`` and ``# pragma: no cover``, ``relative_files``,
``[paths]`` remapping. A changed line that is not executable (comment, blank, docstring,
``else:``) maps to no statement; a changed line inside a multi-line statement maps to the
statement's first line, so the statement counts once however many of its lines changed.

Two halves: ``Target`` (the configuration and coverage's static analysis of the files, which
depend on the code only and can be prepared while the tests run) and ``MeasuredData`` (the data
the tests recorded, read with ``CoverageData.lines``/``arcs`` and joined with that analysis by
``greenlight.coverage.join``, which does what coverage's ``Analysis`` does for the changed
statements only).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException
from coverage.files import GlobMatcher, PathAliases, prep_patterns
from coverage.python import get_python_source

from greenlight.coverage.combine import combine_parallel
from greenlight.coverage.join import join
from greenlight.coverage.static import StaticAnalysis, blob_sha
from greenlight.errors import UsageError

CONFIG_FILES = (".coveragerc", ".coveragerc.toml", "setup.cfg", "tox.ini", "pyproject.toml")
OUTSIDE_SOURCE = "outside the configured coverage source"


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


def changed_statements(static: StaticAnalysis, changed: frozenset[int] | list[int]
                       ) -> dict[int, list[int]]:
    """Statement (first line) -> the changed lines that belong to it."""
    changed_in: dict[int, list[int]] = {}
    for line in sorted(changed):
        first = static.first_line(line)
        if first in static.statements:
            changed_in.setdefault(first, []).append(line)
    return changed_in


def _data_path(repo_dir: Path, data_file: Path | None, cov_config_data: str) -> Path:
    path = Path(data_file) if data_file else repo_dir / cov_config_data
    path = path if path.is_absolute() else (Path.cwd() / path)
    pieces = sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())
    if path.is_file():
        data_time = path.stat().st_mtime_ns
        newer = [p for p in pieces if p.stat().st_mtime_ns > data_time]
        if newer:
            # Pieces written after the combined file hold runs it lacks: gating it alone
            # would report lines those runs executed as missed.
            raise UsageError(
                f"coverage data {path} is older than {len(newer)} uncombined parallel data "
                f"file(s) beside it, such as {newer[0].name}: combine first (`coverage "
                f"combine` in {path.parent}, or --combine)")
        return path
    if pieces:
        raise UsageError(
            f"no combined coverage data at {path}, but {len(pieces)} parallel data file(s) "
            f"such as {pieces[0].name} exist: run `coverage combine` in {path.parent} first")
    raise UsageError(
        f"no coverage data at {path}: run the tests under coverage first (for example "
        "`coverage run -m pytest`, then `coverage combine` with parallel = true), or pass --data")


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _file_blob(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return blob_sha(f.read())
    except OSError:
        return None


def sources_manifest_path(data_path: Path) -> Path:
    """Where the content of the sources a data file was checked against is kept (a dash, not
    a dot: ``<data>.*`` are coverage's parallel pieces)."""
    return data_path.with_name(data_path.name + "-greenlight-sources.json")


def _data_digest(data_path: Path) -> str:
    digest = hashlib.sha256()
    with open(data_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_time(recorded: object, data_time: int) -> bool:
    """Is ``data_time`` the recorded one, as a copy keeps it: to the nanosecond (``cp -p``) or
    to the second with no fraction (tar)?"""
    if not isinstance(recorded, int):
        return False
    return data_time == recorded or (data_time % 10**9 == 0
                                     and data_time == recorded - recorded % 10**9)


def _read_manifest(path: Path, digest: str, data_time: int) -> dict[str, str]:
    """The recorded source blobs, if the manifest belongs to this very data file: the same
    bytes with the same time (a new run can write the same bytes over other sources)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("data_sha256") != digest or \
            not _same_time(manifest.get("data_mtime_ns"), data_time):
        return {}
    files = manifest.get("files")
    return files if isinstance(files, dict) else {}


def _write_manifest(path: Path, digest: str, data_time: int, files: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    manifest = {"data_sha256": digest, "data_mtime_ns": data_time, "files": files}
    try:
        tmp.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        # A read-only data folder: nothing is lost but the shortcut for later copies (they
        # fall back to comparing times).
        tmp.unlink(missing_ok=True)


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


class RealPaths:
    """``os.path.realpath`` of many files in few directories: each directory is resolved once,
    then each file costs one ``lstat`` (to see whether it is itself a link)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def path(self, path: str) -> str:
        head, tail = os.path.split(os.path.abspath(path))
        real_dir = self._dirs.get(head)
        if real_dir is None:
            real_dir = self._dirs[head] = os.path.realpath(head)
        full = os.path.join(real_dir, tail)
        if tail in ("", ".", "..") or os.path.islink(full):
            return os.path.realpath(full)
        return full


class Target:
    """The measured checkout and its coverage configuration (no data): file scope and coverage's
    static analysis of files."""

    def __init__(self, repo_dir: Path, config_file: Path | None):
        self.repo_dir = Path(os.path.realpath(repo_dir))
        if config_file is not None:
            config_file = Path(config_file).resolve()
            if not config_file.is_file():
                raise UsageError(f"coverage config {config_file} does not exist; "
                                 "pass --config FILE of the target's coverage settings")
        self.config_arg: str | bool = str(config_file) if config_file else True
        self.args_key = (str(self.repo_dir), config_file)   # what a reuse must match
        with contextlib.chdir(self.repo_dir):
            try:
                self.cov = coverage.Coverage(data_file=None, config_file=self.config_arg)
            except CoverageException as exc:
                raise UsageError(f"cannot read the coverage config in {self.repo_dir}: "
                                 f"{exc}") from exc
            self.config = self.cov.config
            self.omit = _matcher((self.config.run_omit or []) + (self.config.report_omit or []),
                                 "omit")
            self.include = _matcher((self.config.run_include or [])
                                    + (self.config.report_include or []), "include")
        self.sources = _source_roots(self.config, self.repo_dir)
        self._full: dict[str, str] = {}
        self.real = RealPaths()

    def full_path(self, rel_path: str) -> str:
        full = self._full.get(rel_path)
        if full is None:
            full = self._full[rel_path] = self.real.path(os.path.join(self.repo_dir, rel_path))
        return full

    def static_scope(self, rel_path: str) -> str | None:
        """Why a changed file is out of scope whatever the data says (omit/include), or
        ``OUTSIDE_SOURCE`` when it is outside ``source`` (in scope only if it was measured
        anyway), or None."""
        full = self.full_path(rel_path)
        if self.omit and self.omit.match(full):
            return "omitted by the coverage configuration"
        if self.include and not self.include.match(full):
            return "not included by the coverage configuration"
        if self.sources and not any(full == root or full.startswith(root + os.sep)
                                    for root in self.sources):
            return OUTSIDE_SOURCE
        return None

    def analyse(self, rel_path: str, branch: bool) -> StaticAnalysis:
        full = self.full_path(rel_path)
        with contextlib.chdir(self.repo_dir):
            try:
                return StaticAnalysis.of_file(full, self.cov, branch)
            except OSError as exc:
                raise UsageError(f"cannot read {full}: {exc}; run from a checkout of head"
                                 ) from exc

    def analyse_many(self, paths: list[str], branch: bool, parallel: bool = True
                     ) -> list[StaticAnalysis]:
        """``analyse`` for many files; large pushes are spread over the CPUs when ``parallel``
        (coverage's parser costs a few milliseconds per file, and a big push touches
        hundreds)."""
        workers = min(os.cpu_count() or 1, len(paths) // PARALLEL_FROM) if parallel else 1
        if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return [self.analyse(path, branch) for path in paths]
        global _worker
        _worker = self
        chunks = [paths[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_analyse_chunk, chunks, [branch] * workers))
        by_path = dict(zip(itertools.chain.from_iterable(chunks),
                           itertools.chain.from_iterable(results)))
        return [by_path[path] for path in paths]


PARALLEL_FROM = 48  # files per worker process below which one process is quicker
_worker: Target | None = None


def _analyse_chunk(paths: list[str], branch: bool) -> list[StaticAnalysis]:
    assert _worker is not None
    return [_worker.analyse(path, branch) for path in paths]


class _ArcsOnce:
    """The CoverageData calls of the join, reading each file once:
    CoverageData.lines() of branch data re-reads the arcs (same lines, as coverage derives
    them)."""

    def __init__(self, data: coverage.CoverageData):
        self._data = data
        self._has_arcs = data.has_arcs()
        self._arcs: dict[str, list | None] = {}
        self._lines: dict[str, list | None] = {}

    def has_arcs(self) -> bool:
        return self._has_arcs

    def arcs(self, filename: str):
        if filename not in self._arcs:
            self._arcs[filename] = self._data.arcs(filename)
        return self._arcs[filename]

    def lines(self, filename: str):
        if filename not in self._lines:
            arcs = self.arcs(filename) if self._has_arcs else None
            self._lines[filename] = (self._data.lines(filename) if arcs is None else
                                     list({n for n in itertools.chain.from_iterable(arcs)
                                           if n > 0}))
        return self._lines[filename]


class MeasuredData:
    """A loaded coverage data file, for a ``Target``."""

    def __init__(self, target: Target, data_file: Path | None, combine: bool = False):
        data_file = Path(data_file).absolute() if data_file else None  # relative to the caller
        self.target = target
        self.repo_dir = target.repo_dir
        self.config = target.config
        with contextlib.chdir(self.repo_dir):
            try:
                if combine:
                    combine_parallel(data_file or self.repo_dir / self.config.data_file,
                                     target.config_arg)
                data_path = _data_path(self.repo_dir, data_file, self.config.data_file)
                # The target's configuration is already read (Target); the data file alone
                # is read here, with coverage's CoverageData.
                data = coverage.CoverageData(basename=str(data_path))
                data.read()
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
        self.data = data
        self._reads = _ArcsOnce(data)
        self.data_path = data_path
        self.keys: dict[str, str] = {}
        for key in data.measured_files():
            self.keys[target.real.path(os.path.join(self.repo_dir, key))] = key
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

    def scope(self, rel_path: str, static_reason: str | None = ...) -> str | None:
        """Why a changed file is out of coverage's scope, or None when it is in scope
        (``static_reason``: ``Target.static_scope``'s answer, if already known)."""
        if static_reason is ...:
            static_reason = self.target.static_scope(rel_path)
        if static_reason == OUTSIDE_SOURCE and self.target.full_path(rel_path) in self.keys:
            return None   # measured although outside source: coverage reports it too
        return static_reason

    def measure(self, rel_path: str, changed: frozenset[int], static: StaticAnalysis,
                with_source: bool = True, changed_in: dict[int, list[int]] | None = None
                ) -> FileMeasure:
        """Coverage of the statements that ``changed`` lines of ``rel_path`` belong to
        (``changed_in``: ``changed_statements(static, changed)`` if already known)."""
        full = self.target.full_path(rel_path)
        key = self.keys.get(full)
        result = FileMeasure(rel_path, changed=sorted(changed), in_data=key is not None)
        if static.note:
            result.note = static.note
            return result
        if with_source:
            result.source_lines = get_python_source(full).splitlines()
        self._check_version(rel_path, key, static.n_lines)
        result.changed_in = changed_in if changed_in is not None else \
            changed_statements(static, changed)
        result.statements = sorted(result.changed_in)
        if key is None:
            lines, arcs = [], ([] if self._reads.has_arcs() else None)
        else:
            lines = self._reads.lines(key) or []
            arcs = (self._reads.arcs(key) or []) if self._reads.has_arcs() else None
        joined = join(static, result.statements, lines, arcs)
        result.missing = joined.missing
        result.partial = joined.partial
        result.branches, result.branches_covered = joined.branches, joined.branches_covered
        if key is None:
            result.note = "never imported while coverage was measuring"
        return result

    def check_fresh(self, rel_paths: list[str]) -> None:
        """Refuse data older than the sources it should describe (edited after the tests ran):
        its line numbers would be matched against code that was never measured.

        The first check of a data file compares times (a source written after the data is
        suspect) and records the content of the sources it accepted beside the data; from then
        on content decides, so the data copied with its old time into a fresh checkout of the
        same code (``cp -p``, tar, CI artifacts) is still accepted, and an edit is still caught.
        """
        data_time = self.data_path.stat().st_mtime_ns
        digest = _data_digest(self.data_path)
        manifest_path = sources_manifest_path(self.data_path)
        known = _read_manifest(manifest_path, digest, data_time)
        stale, edited, accepted = [], [], {}
        for path in rel_paths:
            full = os.path.join(self.repo_dir, path)
            if path not in known and _mtime_ns(full) > data_time:
                stale.append(path)
                continue
            blob = _file_blob(full)
            if path in known and blob != known[path]:
                edited.append(path)
            elif blob is not None:
                accepted[path] = blob
        if edited:
            raise UsageError(
                f"coverage data {self.data_path} was measured on other content of {edited[0]!r}"
                + (f" and {len(edited) - 1} more changed file(s)" if len(edited) > 1 else "")
                + ": the file changed after the tests ran; re-run the tests under coverage")
        if stale:
            raise UsageError(
                f"coverage data {self.data_path} is older than {stale[0]!r}"
                + (f" and {len(stale) - 1} more changed file(s)" if len(stale) > 1 else "")
                + ": the file changed after the tests ran; re-run the tests under coverage "
                f"(data copied from a checkout of the same code is accepted with the "
                f"{manifest_path.name} that its first gate wrote beside it)")
        if set(accepted) - set(known):
            _write_manifest(manifest_path, digest, data_time, {**known, **accepted})

    def _check_version(self, rel_path: str, key: str | None, n_lines: int) -> None:
        if key is None:
            return
        executed = self._reads.lines(key)
        last = max(executed) if executed else 0
        if last > n_lines:
            raise UsageError(
                f"coverage data {self.data_path} is from another version of {rel_path}: it ran "
                f"line {last} of a {n_lines}-line file; re-run the tests on head")
