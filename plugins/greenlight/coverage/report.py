"""The report of coverage on new lines: plain data, its verdict and its JSON form (the contract).

The percentage follows coverage.py's own formula, so branch coverage counts exactly as in
``coverage report``: (covered statements + covered branch exits) / (statements + branch exits),
over the new statements only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from greenlight.coverage.measured import FileMeasure, Skipped

SCHEMA = "greenlight.coverage/1"


@dataclass(frozen=True)
class Origin:
    """The commit that last wrote a line."""

    commit: str
    author: str
    email: str
    summary: str

    def to_dict(self) -> dict:
        return {"commit": self.commit, "author": self.author, "email": self.email,
                "summary": self.summary}


def display_path(path: str) -> str:
    """A path safe to print and to put in JSON: undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def percent(covered: int, total: int) -> float:
    return 100.0 if total == 0 else round(100.0 * covered / total, 2)


@dataclass
class FileReport:
    """New statements of one file and how well the tests ran them."""

    measure: FileMeasure
    old_path: str | None = None
    origins: dict[int, Origin] = field(default_factory=dict)   # changed line -> origin

    @property
    def path(self) -> str:
        return self.measure.path

    @cached_property
    def units(self) -> tuple[int, int]:
        """(covered, total) in coverage.py's units: statements plus branch exits (the measure
        is complete when a FileReport is made)."""
        m = self.measure
        covered = len(m.statements) - len(m.missing) + m.branches_covered
        return covered, len(m.statements) + m.branches

    @property
    def percent(self) -> float:
        return percent(*self.units)

    def origin_of(self, statement: int) -> Origin | None:
        for line in self.measure.changed_in.get(statement, [statement]):
            if line in self.origins:
                return self.origins[line]
        return None

    def to_dict(self) -> dict:
        m = self.measure
        missing = []
        for line in m.missing:
            origin = self.origin_of(line)
            missing.append({"line": line, "changed_lines": m.changed_in.get(line, [line]),
                            **(origin.to_dict() if origin else {})})
        partial = []
        for line, dests in sorted(m.partial.items()):
            origin = self.origin_of(line)
            partial.append({"line": line, "missing_destinations": dests,
                            **(origin.to_dict() if origin else {})})
        covered, total = self.units
        return {
            "path": display_path(m.path),
            "old_path": display_path(self.old_path) if self.old_path else None,
            "new_statements": len(m.statements),
            "covered_statements": len(m.statements) - len(m.missing),
            "missing_lines": m.missing,
            "branches": m.branches,
            "covered_branches": m.branches_covered,
            "partial_branches": sorted(m.partial),
            "covered_units": covered,
            "total_units": total,
            "percent": self.percent,
            "uncovered": missing,
            "partial": partial,
            "in_coverage_data": m.in_data,
            "note": m.note,
        }


@dataclass
class Report:
    """Coverage of the new lines of one push, with the threshold it is judged against."""

    base: str | None
    head: str
    compared_with: str
    fail_under: float
    files: list[FileReport]
    skipped: list[Skipped] = field(default_factory=list)
    changed_files: int = 0
    prepared_note: str = ""   # why a prepared analysis was not used (not part of the JSON)

    @property
    def counted(self) -> list[FileReport]:
        return [f for f in self.files if f.units[1]]

    @property
    def units(self) -> tuple[int, int]:
        covered = sum(f.units[0] for f in self.files)
        return covered, sum(f.units[1] for f in self.files)

    @property
    def new_statements(self) -> int:
        return sum(len(f.measure.statements) for f in self.files)

    @property
    def covered_statements(self) -> int:
        return sum(len(f.measure.statements) - len(f.measure.missing) for f in self.files)

    @property
    def percent(self) -> float:
        return percent(*self.units)

    @property
    def passed(self) -> bool:
        """At or over the threshold, compared exactly (no float rounding at the edge)."""
        covered, total = self.units
        if total == 0:
            return True
        return Fraction(covered * 100, total) >= Fraction(str(self.fail_under))

    @property
    def worst(self) -> FileReport | None:
        """The file with the lowest percentage (most uncovered units on ties)."""
        candidates = [f for f in self.counted if f.units[0] < f.units[1]]
        if not candidates:
            return None
        return min(candidates, key=lambda f: (Fraction(*f.units), f.units[0] - f.units[1]))

    def summary(self) -> str:
        """One line for a build summary or a hook message."""
        if self.units[1] == 0:
            return "no new executable lines: nothing to cover"
        verdict = "ok" if self.passed else "FAILED"
        text = (f"coverage of new code {self.percent:.2f}% ({self.covered_statements}/"
                f"{self.new_statements} new lines"
                + (f", {sum(f.measure.branches_covered for f in self.files)}/"
                   f"{sum(f.measure.branches for f in self.files)} branches"
                   if any(f.measure.branches for f in self.files) else "")
                + f"), threshold {self.fail_under:g}%: {verdict}")
        worst = self.worst
        if worst is not None:
            text += f"; worst: {display_path(worst.path)} {worst.percent:.2f}%"
        return text

    def to_dict(self) -> dict:
        covered, total = self.units
        worst = self.worst
        return {
            "schema": SCHEMA,
            "base": self.base,
            "head": self.head,
            "compared_with": self.compared_with,
            "fail_under": self.fail_under,
            "passed": self.passed,
            "summary": self.summary(),
            "totals": {
                "changed_files": self.changed_files,
                "files": len(self.counted),
                "new_statements": self.new_statements,
                "covered_statements": self.covered_statements,
                "missing_statements": self.new_statements - self.covered_statements,
                "branches": sum(f.measure.branches for f in self.files),
                "covered_branches": sum(f.measure.branches_covered for f in self.files),
                "partial_branches": sum(len(f.measure.partial) for f in self.files),
                "covered_units": covered,
                "total_units": total,
                "percent": self.percent,
            },
            "worst_file": display_path(worst.path) if worst else None,
            "files": [f.to_dict() for f in self.counted],
            "skipped": [{"path": display_path(s.path), "reason": s.reason}
                        for s in self.skipped],
        }
