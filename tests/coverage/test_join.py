"""Our join of data and static analysis (restricted to the changed statements, for speed) must
say what coverage's own ``Analysis`` says about those statements: every gate scenario is replayed
with each join checked against ``coverage.results.analysis_from_file_reporter`` on the same
inputs."""
from __future__ import annotations

import inspect

import pytest
from coverage.results import analysis_from_file_reporter
from greenlight.coverage import measured
from greenlight.coverage.join import join

import tests.coverage.test_gate as gate_tests

NOTHING_TO_JOIN = {"test_bad_inputs_say_what_to_do", "test_parallel_data_files_not_combined",
                   "test_only_comments_and_docstrings_changed_passes_and_says_so",
                   "test_deleted_file_counts_nothing"}
SCENARIOS = [f for name, f in sorted(vars(gate_tests).items()) if name.startswith("test_")]


class _Recorded:
    """The data calls coverage's analysis makes, answered with what the gate read."""

    def __init__(self, lines, arcs):
        self._lines, self._arcs = lines, arcs

    def has_arcs(self):
        return self._arcs is not None

    def lines(self, filename):
        return self._lines

    def arcs(self, filename):
        return self._arcs


def coverage_says(static, statements, lines, arcs) -> dict:
    analysis = analysis_from_file_reporter(_Recorded(lines, arcs), 2, static, "f.py")
    wanted = set(statements)
    result = {"missing": sorted(wanted & analysis.missing), "partial": {}, "branches": 0,
              "covered": 0}
    if analysis.has_arcs:
        missed_arcs = analysis.missing_branch_arcs()
        for line in sorted(wanted):
            exits = analysis.exit_counts.get(line, 0)
            if exits < 2 or line in analysis.no_branch:
                continue
            missed = sorted(missed_arcs.get(line, []))
            result["branches"] += exits
            result["covered"] += exits - len(missed)
            if missed and line not in analysis.missing:
                result["partial"][line] = missed
    return result


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_every_scenario_joins_as_coverage_does(scenario, request, monkeypatch):
    checked = []

    def checking(static, statements, lines, arcs):
        ours = join(static, statements, lines, arcs)
        # and on every statement of the file, not just the changed ones
        for subset in (list(statements), sorted(static.statements)):
            mine = join(static, subset, lines, arcs)
            assert {"missing": mine.missing, "partial": mine.partial,
                    "branches": mine.branches, "covered": mine.branches_covered} \
                == coverage_says(static, subset, lines, arcs)
        checked.append(bool(arcs))
        return ours

    monkeypatch.setattr(measured, "join", checking)
    scenario(**{name: request.getfixturevalue(name)
                for name in inspect.signature(scenario).parameters})
    if scenario.__name__ not in NOTHING_TO_JOIN:
        assert checked, "the scenario never reached the join"
    if scenario.__name__ == "test_new_branch_partially_covered_is_reported_and_fails":
        assert any(checked), "branch data never reached the join"
