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


COMPLEX = '''\
import contextlib


def flow(items, flag):
    total = 0
    with contextlib.suppress(KeyError):
        for item in items:
            if item % 2 and flag:
                total += item
            elif item > 10:
                continue
            else:
                total -= 1
    while total > 100:
        total //= 2
    try:
        result = {1: "a"}[total]
    except KeyError:
        result = "none"
    finally:
        total += 0
    match flag:
        case True:
            label = "on"
        case _:
            label = "off"
    value = (total
             if flag else
             -total)
    gen = [x for x in items if x]
    assert gen is not None
    return result, label, value, lambda y: y or total  # pragma: no branch


def never(x):
    if x:  # pragma: no cover
        return 1
    return 2
'''


def test_join_matches_coverage_on_every_statement_of_a_file_full_of_branches(make_repo):
    """with (coverage's jump fixers), for/while/if-elif-else, try/except/finally, match,
    multi-line expressions, comprehensions, pragmas, an unimported file: every statement,
    several runs with different paths taken."""
    import subprocess
    import sys

    import coverage
    from greenlight.coverage.static import StaticAnalysis

    from tests.conftest import child_env

    repo = make_repo()
    repo.write("complex.py", COMPLEX)
    fixers = []
    for n, calls in enumerate(["", "flow([1, 2, 30], True)", "flow([1, 3], False)\n"
                               "flow([], True)\nflow([1] * 300, True)"]):
        repo.write("run.py", f"from complex import flow\n{calls}\n")
        for stale in repo.path.glob(".coverage*"):
            stale.unlink()
        subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "run.py"],
                       cwd=repo.path, env=child_env(), check=True, capture_output=True)
        cov = coverage.Coverage(data_file=str(repo.path / ".coverage"))
        cov.load()
        data = cov.get_data()
        (key,) = [f for f in data.measured_files() if f.endswith("complex.py")]
        static = StaticAnalysis.of_file(key, cov, branch=True)
        fixers.append(bool(static.jump_fixers))
        everything = sorted(static.statements)
        for lines, arcs in ((data.lines(key) or [], data.arcs(key) or []), ([], [])):
            # with the fixers (general path), then without them (one-pass path)
            for static.jump_fixers in (dict(static.jump_fixers), {}):
                mine = join(static, everything, lines, arcs)
                assert {"missing": mine.missing, "partial": mine.partial,
                        "branches": mine.branches, "covered": mine.branches_covered} \
                    == coverage_says(static, everything, lines, arcs), f"run {n}"
            static.jump_fixers = StaticAnalysis.of_file(key, cov, branch=True).jump_fixers
    assert any(fixers), "no jump fixers for the `with` block: the general path went untested"
