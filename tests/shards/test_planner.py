"""Planner properties (hypothesis) and the behaviours the CLI and plugin rely on."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_split.algorithms import Algorithms

from greenlight.errors import UsageError
from greenlight.shards.planner import (MIN_SECONDS, ideal_makespan, unknown_prices,
                                       plan_shards, round_robin)


class _Item:
    """What pytest-split's algorithms read from a pytest item: its node id."""

    def __init__(self, nodeid: str):
        self.nodeid = nodeid

    def __str__(self) -> str:
        return self.nodeid


def _makespan(groups, durations) -> float:
    return max((sum(durations[t] for t in g) for g in groups), default=0.0)


# Floats, and small integers (many ties: where tie-breaking differences would show).
suites = st.lists(st.one_of(st.floats(min_value=MIN_SECONDS, max_value=100.0, allow_nan=False),
                            st.integers(min_value=1, max_value=4).map(float)),
                  min_size=1, max_size=60).map(
    lambda ds: {f"tests/test_m{i % 7}.py::test_{i}": d for i, d in enumerate(ds)})


@settings(max_examples=150, deadline=None)
@given(durations=suites, n=st.integers(min_value=1, max_value=9))
def test_every_test_lands_in_exactly_one_shard(durations, n):
    ids = list(durations)
    plan = plan_shards(ids, durations, n)
    placed = [t for s in plan.shards for t in s.tests]
    assert sorted(placed) == sorted(ids)
    assert len(plan.shards) == n
    assert [s.index for s in plan.shards] == list(range(1, n + 1))


@settings(max_examples=150, deadline=None)
@given(durations=suites, n=st.integers(min_value=1, max_value=9))
def test_makespan_never_worse_than_round_robin_or_pytest_split(durations, n):
    ids = list(durations)
    plan = plan_shards(ids, durations, n)
    ours = _makespan([s.tests for s in plan.shards], durations)
    items = [_Item(t) for t in ids]
    least = max(g.duration for g in Algorithms.least_duration.value(n, items, durations))
    chunks = max(g.duration for g in Algorithms.duration_based_chunks.value(n, items, durations))
    tol = 1e-6
    assert ours <= _makespan(round_robin(ids, n), durations) + tol
    assert ours <= least + tol
    assert ours <= chunks + tol
    assert ours >= ideal_makespan(list(durations.values()), n) - tol


@settings(max_examples=60, deadline=None)
@given(durations=suites, n=st.integers(min_value=1, max_value=6))
def test_group_by_module_keeps_modules_whole(durations, n):
    plan = plan_shards(list(durations), durations, n, group_by_module=True)
    home = {}
    for s in plan.shards:
        for t in s.tests:
            home.setdefault(t.split("::")[0], set()).add(s.index)
    assert all(len(shards) == 1 for shards in home.values())


def test_deterministic_whatever_the_dict_order():
    durations = {f"t.py::test_{i}": (i * 37 % 11) / 10 + 0.01 for i in range(40)}
    reordered = dict(reversed(list(durations.items())))
    a = plan_shards(list(durations), durations, 4)
    b = plan_shards(list(durations), reordered, 4)
    assert a.to_json() == b.to_json()


def test_keeps_collection_order_inside_a_shard():
    ids = [f"t.py::test_{i}" for i in range(12)]
    plan = plan_shards(ids, {t: 1.0 + i for i, t in enumerate(ids)}, 3)
    for s in plan.shards:
        assert list(s.tests) == sorted(s.tests, key=ids.index)


def test_unknown_tests_get_their_modules_mean_else_the_suites():
    durations = {"a.py::t1": 1.0, "a.py::t2": 3.0, "a.py::t3": 11.0, "b.py::t1": 1.0}
    plan = plan_shards([*durations, "a.py::new", "c.py::new"], durations, 2)
    assert plan.unknown == ("a.py::new", "c.py::new")
    assert plan.mean_seconds == 4.0                 # the suite's: (1 + 3 + 11 + 1) / 4
    assert plan.durations_used["a.py::new"] == 5.0  # its module's: (1 + 3 + 11) / 3
    assert plan.durations_used["c.py::new"] == 4.0
    assert unknown_prices(["x"], {}) == ({}, 1.0)


def test_a_fast_suite_with_a_slow_tail_is_priced_at_the_mean_not_the_median():
    # 90 tests of 1 ms and 10 of 2 s: the median (1 ms) would price the 30 untimed tests of a
    # new module at nothing and predict the makespan far too low.
    durations = {f"fast.py::t{k}": 0.001 for k in range(90)}
    durations.update({f"slow.py::t{k}": 2.0 for k in range(10)})
    new = [f"new.py::t{k}" for k in range(30)]
    plan = plan_shards([*durations, *new], durations, 4)
    assert plan.mean_seconds == pytest.approx(0.2009)
    assert plan.total_seconds == pytest.approx(20.09 + 30 * 0.2009)


def test_improves_on_plain_largest_first():
    # LPT alone gives {3,2,2} | {3,2} = 7; the optimum {3,3} | {2,2,2} = 6 needs a swap.
    durations = {"t.py::a": 3, "t.py::b": 3, "t.py::c": 2, "t.py::d": 2, "t.py::e": 2}
    plan = plan_shards(list(durations), durations, 2)
    assert plan.makespan == pytest.approx(6.0)


def test_zero_durations_still_spread_evenly():
    ids = [f"t.py::test_{i}" for i in range(9)]
    plan = plan_shards(ids, dict.fromkeys(ids, 0.0), 3)
    assert [len(s.tests) for s in plan.shards] == [3, 3, 3]


def test_more_shards_than_tests_leaves_empty_shards():
    plan = plan_shards(["t.py::a", "t.py::b"], {}, 4)
    assert sorted(len(s.tests) for s in plan.shards) == [0, 0, 1, 1]


@pytest.mark.parametrize("n", [0, -1])
def test_rejects_a_bad_shard_count(n):
    with pytest.raises(UsageError, match="shard count"):
        plan_shards(["t.py::a"], {}, n)


def test_rejects_negative_durations():
    with pytest.raises(UsageError, match="t.py::a"):
        plan_shards(["t.py::a"], {"t.py::a": -1.0}, 2)
