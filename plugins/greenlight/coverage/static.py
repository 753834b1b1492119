"""coverage.py's static analysis of a file, detached from its parser so it can be saved and reused.

Everything coverage needs from a source file to judge its data (statements, excluded lines and
pragmas, the first lines of multi-line statements, the possible arcs and branch exits) depends on
the code and the configuration only, not on what the tests ran. ``StaticAnalysis`` captures it
from coverage's own ``PythonFileReporter`` and implements the part of the FileReporter interface
that coverage's ``analysis_from_file_reporter`` reads; ``greenlight.coverage.join`` joins it with
the data as coverage's ``Analysis`` does (checked against it in the tests), whether the analysis
was computed just now or read from a prepared file.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import coverage
from coverage.exceptions import NotPython
from coverage.python import PythonFileReporter

from greenlight.errors import UsageError

Arc = tuple[int, int]


def blob_sha(content: bytes) -> str:
    """git's blob id of ``content`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def config_key(config: coverage.CoverageConfig, extensions: tuple[str, ...]) -> str:
    """A hash of what the static analysis and the file scope depend on: the coverage and Python
    versions (the parser and the AST differ between them), the exclusion and partial-branch
    patterns, branch measurement, omit/include/source and the file endings checked."""
    parts = {name: getattr(config, name, None) for name in (
        "branch", "exclude_list", "exclude_also", "partial_list", "partial_always_list",
        "partial_also", "run_omit", "run_include", "report_omit", "report_include", "source",
        "source_pkgs", "source_dirs")}
    parts.update(coverage=coverage.__version__, python=sys.version, extensions=list(extensions))
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StaticAnalysis:
    """What coverage's PythonFileReporter computes for one file, as plain data.

    ``arcs_`` is None when branch analysis was not done (data without arcs does not need it).
    ``note`` is set (and the rest empty) when coverage cannot parse the file as Python.
    """

    n_lines: int = 0
    statements: set[int] = field(default_factory=set)
    excluded: set[int] = field(default_factory=set)
    multiline: dict[int, int] = field(default_factory=dict)
    arcs_: set[Arc] | None = None
    exits: dict[int, int] = field(default_factory=dict)
    no_branch: set[int] = field(default_factory=set)
    jump_fixers: dict[Arc, Arc | None] = field(default_factory=dict)
    note: str = ""
    _destinations: dict[int, set[int]] | None = field(default=None, repr=False, compare=False)

    # -- the FileReporter methods analysis_from_file_reporter calls ---------------------------
    def lines(self) -> set[int]:
        return self.statements

    def excluded_lines(self) -> set[int]:
        return self.excluded

    def first_line(self, lineno: int) -> int:
        if lineno < 0:
            return -self.multiline.get(-lineno, -lineno)
        return self.multiline.get(lineno, lineno)

    def translate_lines(self, lines: Iterable[int]) -> set[int]:
        ml = self.multiline   # executed lines are positive: first_line without the sign test
        return {ml.get(n, n) if n > 0 else self.first_line(n) for n in lines}

    def translate_arcs(self, arcs: Iterable[Arc]) -> set[Arc]:
        fixers = self.jump_fixers
        if fixers:
            arcs = [arc for arc in (fixers.get(arc, arc) for arc in arcs) if arc is not None]
        ml = self.multiline
        return {(ml.get(a, a) if a >= 0 else -ml.get(-a, -a),
                 ml.get(b, b) if b >= 0 else -ml.get(-b, -b)) for a, b in arcs}

    def arcs(self) -> set[Arc]:
        assert self.arcs_ is not None
        return self.arcs_

    def destinations(self) -> dict[int, set[int]]:
        """The possible arcs grouped by the line they leave (built once, then kept)."""
        if self._destinations is None:
            grouped: dict[int, set[int]] = {}
            for a, b in self.arcs():
                grouped.setdefault(a, set()).add(b)
            self._destinations = grouped
        return self._destinations

    def exit_counts(self) -> dict[int, int]:
        return self.exits

    def no_branch_lines(self) -> set[int]:
        return self.no_branch

    # -- building and (de)serializing ------------------------------------------------------
    @classmethod
    def of_file(cls, full: str, cov: coverage.Coverage, branch: bool) -> StaticAnalysis:
        """Analyse ``full`` with coverage's own reporter (``cov`` carries the configuration).
        Raises OSError when the file cannot be read."""
        reporter = PythonFileReporter(full, cov)
        try:
            parser = reporter.parser
        except NotPython as exc:
            return cls(note=f"not measurable as Python: {exc}")
        result = cls(n_lines=len(reporter.source().splitlines()),
                     statements=set(reporter.lines()), excluded=set(reporter.excluded_lines()),
                     multiline=dict(parser.multiline_map),
                     no_branch=set(reporter.no_branch_lines()))
        if branch:
            result.arcs_ = set(reporter.arcs())
            result.exits = dict(reporter.exit_counts())
            # Data arcs leaving a `with` are rewritten by these fixers (coverage computes them
            # with the arcs); no public accessor, so fail loudly if coverage renames it.
            fixers = getattr(parser, "_with_jump_fixers", None)
            if fixers is None:
                raise UsageError(f"coverage {coverage.__version__} has no with-jump fixers: "
                                 "this Greenlight cannot reuse its analysis")
            result.jump_fixers = dict(fixers)
        return result

    def to_json(self) -> dict:
        """Compact form: pairs flattened ([a, b, c, d] for (a, b), (c, d)), quick to load."""
        if self.note:
            return {"note": self.note}
        return {"n": self.n_lines, "s": sorted(self.statements), "x": sorted(self.excluded),
                "m": _flat(self.multiline.items()),
                "a": None if self.arcs_ is None else _flat(self.arcs_),
                "e": _flat(self.exits.items()), "nb": sorted(self.no_branch),
                "j": [[*k, *(v or ())] for k, v in sorted(self.jump_fixers.items())]}

    @classmethod
    def from_json(cls, data: dict) -> StaticAnalysis:
        if "note" in data:
            return cls(note=data["note"])
        return cls(n_lines=data["n"], statements=set(data["s"]), excluded=set(data["x"]),
                   multiline=dict(_pairs(data["m"])),
                   arcs_=None if data["a"] is None else set(_pairs(data["a"])),
                   exits=dict(_pairs(data["e"])), no_branch=set(data["nb"]),
                   jump_fixers={(j[0], j[1]): (j[2], j[3]) if len(j) == 4 else None
                                for j in data["j"]})


def _flat(pairs: Iterable[tuple[int, int]]) -> list[int]:
    return [n for pair in sorted(pairs) for n in pair]


def _pairs(flat: list[int]):
    it = iter(flat)
    return zip(it, it)
