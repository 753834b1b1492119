"""The per-build fan-out decision of ``[shards] count = "auto"``: a short or never-measured suite
runs in the verify build itself, a long one fans out, an explicit count always does."""
from __future__ import annotations

from greenlight.shards.fanout import decide_fan_out
from greenlight.shards.planner import plan_shards

IDS = [f"tests/test_a.py::test_{k}" for k in range(10)]


def test_short_suite_runs_here():
    plan = plan_shards(IDS, {t: 0.2 for t in IDS}, 2)
    decision = decide_fan_out(plan, 30.0)
    assert not decision.fan_out
    assert abs(decision.predicted_seconds - 2.0) < 1e-9
    assert "predicted 2.0 s < 30 s" in decision.reason


def test_long_suite_fans_out():
    plan = plan_shards(IDS, {t: 4.0 for t in IDS}, 2)
    decision = decide_fan_out(plan, 30.0)
    assert decision.fan_out and abs(decision.predicted_seconds - 40.0) < 1e-9


def test_the_threshold_itself_fans_out():
    plan = plan_shards(IDS, {t: 3.0 for t in IDS}, 2)
    assert decide_fan_out(plan, 30.0).fan_out


def test_unknown_tests_count_at_the_mean_of_the_known():
    # 2 known tests of 4 s: the 8 new ones are predicted at 4 s too (40 s in all).
    plan = plan_shards(IDS, {IDS[0]: 4.0, IDS[1]: 4.0}, 2)
    assert decide_fan_out(plan, 30.0).fan_out


def test_no_recorded_durations_runs_here_to_measure():
    # The planner guesses 1 s per unknown test: 1000 s here, however fast the tests are.
    plan = plan_shards([f"t.py::t{k}" for k in range(1000)], {}, 2)
    decision = decide_fan_out(plan, 30.0)
    assert not decision.fan_out and "no recorded durations" in decision.reason


def test_explicit_count_or_zero_threshold_always_fans_out():
    plan = plan_shards(IDS, {}, 3)
    assert decide_fan_out(plan, None).fan_out
    assert "explicitly" in decide_fan_out(plan, None).reason
    assert decide_fan_out(plan, 0).fan_out


def test_one_shard_never_fans_out():
    assert not decide_fan_out(plan_shards(IDS, {t: 9.0 for t in IDS}, 1), None).fan_out
