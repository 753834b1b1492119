"""The join of what the tests ran with coverage's static analysis, for the changed statements only.

coverage's ``analysis_from_file_reporter`` builds an ``Analysis`` of the whole file (sorted arc
lists, totals, every branch line) and the gate then keeps the few statements a push changed; on a
push of hundreds of files that whole-file work was half of the gate's time after the tests. This
does the same steps as coverage 7's ``Analysis`` (translate the executed lines and arcs through
the file's multi-line map and ``with`` fixers, fold a line's self-arc onto its single possible
exit, a branch's missed exits are its possible arcs not executed, minus exits into excluded
lines), for the requested statements only. ``tests/coverage/test_join.py`` replays every gate
scenario and checks the result against coverage's own ``Analysis``, so a coverage upgrade that
changes the semantics fails there, not silently.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from greenlight.coverage.static import Arc, StaticAnalysis


@dataclass
class Joined:
    """Coverage of some statements of one file."""

    missing: list[int] = field(default_factory=list)          # statements never run
    partial: dict[int, list[int]] = field(default_factory=dict)   # run, but exits missed
    branches: int = 0
    branches_covered: int = 0


def join(static: StaticAnalysis, statements: Iterable[int], executed_lines: Iterable[int],
         executed_arcs: Iterable[Arc] | None) -> Joined:
    """``statements`` (first lines, all in ``static.statements``) against the data's executed
    lines, and against its arcs when the data has them (None: line data, no branches)."""
    executed = static.translate_lines(executed_lines)
    result = Joined()
    wanted = sorted(statements)
    result.missing = [s for s in wanted if s not in executed]
    if executed_arcs is None:
        return result
    branch_lines = [s for s in wanted
                    if static.exits.get(s, 0) > 1 and s not in static.no_branch]
    if not branch_lines:
        return result
    possible = static.destinations()
    arcs = _folded(static.translate_arcs(executed_arcs), possible)
    if static.jump_fixers:   # coverage translates twice; without fixers the second is a no-op
        arcs = static.translate_arcs(arcs)
    missing = set(result.missing)
    for line in branch_lines:
        exits = static.exits[line]
        missed = sorted(b for b in possible.get(line, ())
                        if (line, b) not in arcs and b not in static.excluded)
        result.branches += exits
        result.branches_covered += exits - len(missed)
        if missed and line not in missing:
            result.partial[line] = missed
    return result


def _folded(arcs: Iterable[Arc], possible: dict[int, set[int]]) -> set[Arc]:
    """Executed arcs with each self-arc (a line jumping to itself) read as the line's only
    possible exit, and dropped when it has several, as coverage's analysis does."""
    folded = set()
    for a, b in arcs:
        if a != b:
            folded.add((a, b))
        elif len(possible.get(a, ())) == 1:
            folded.add((a, next(iter(possible[a]))))
    return folded
