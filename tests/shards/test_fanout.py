"""Whether verify builds fan out with ``[shards] count = "auto"``: only when the workers span
more than one machine; then per build, a short or never-measured suite runs in the verify build
itself, a long one fans out; an explicit count always fans out."""
from __future__ import annotations

from greenlight.shards.fanout import decide_fan_out, shard_layout
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


# Where the workers run: shard builds only pay on cores the verify build does not use.

def test_auto_with_local_workers_only_runs_here():
    layout = shard_layout("auto", 2, 0)
    assert layout.count == 1 and not layout.fans_out
    assert layout.reason.startswith("run here: all 2 workers are on this machine")
    assert "[shards] count" in layout.reason   # how to fan out anyway


def test_auto_with_one_worker_runs_here():
    for local, remote in ((1, 0), (0, 1)):
        layout = shard_layout("auto", local, remote)
        assert layout.count == 1 and layout.reason.startswith("run here: 1 worker")


def test_auto_with_remote_workers_makes_one_shard_per_worker_local_and_remote():
    layout = shard_layout("auto", 2, 1)
    assert layout.count == 3 and layout.fans_out
    assert "2 on this machine, 1 remote" in layout.reason
    assert shard_layout("auto", 0, 2).count == 2


def test_explicit_count_fans_out_wherever_the_workers_are():
    assert shard_layout(3, 2, 0).count == 3 and shard_layout(3, 2, 0).fans_out
    assert shard_layout(2, 1, 0).fans_out
    for count in (0, 1):
        layout = shard_layout(count, 1, 3)
        assert not layout.fans_out and f"[shards] count = {count}" in layout.reason
