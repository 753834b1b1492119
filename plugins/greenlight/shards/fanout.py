"""Whether a verify build should fan its tests out to shard builds: a pure, per-build decision.

Each shard build pays a fixed start-up (checkout, setup, the plugin download, pytest start-up
and collection, uploads, coverage combine) that a suite of a few seconds never earns back: on
the demo (28 tests, ~2 s) two shards make push → verdict 6.9 s instead of 4.2 s on a quiet
machine, 13.9 s instead of 3.7 s on a loaded one (docs/shards.md). So with
``[shards] count = "auto"`` the verify build fans out only when the suite's predicted duration
(the sum of the collected tests' recorded durations, unknown tests at their module's mean, as the
planner weighs them) reaches a threshold; an explicit count always fans out.

With no recorded duration at all there is nothing to predict from: the build runs the tests
itself and records their durations, so the next build decides on data (guessing a second per
test, the planner's fallback, would fan out a thousand 10-ms tests).
"""
from __future__ import annotations

from dataclasses import dataclass

from greenlight.shards.planner import Plan


@dataclass(frozen=True)
class FanOutDecision:
    """``fan_out``: trigger the shard builds; ``reason``: one line for the build's summary."""

    fan_out: bool
    reason: str
    predicted_seconds: float | None = None


def decide_fan_out(plan: Plan, min_suite_seconds: float | None) -> FanOutDecision:
    """Fan out ``plan`` or run its tests in the verify build itself.

    ``min_suite_seconds`` None means the shard count was set explicitly, and 0 asks for the
    fan-out whatever the suite: both always fan out (when the plan has two shards or more).
    Otherwise fan out only when the predicted suite time is at least ``min_suite_seconds`` and
    some of the collected tests have a recorded duration.
    """
    tests = sum(len(s.tests) for s in plan.shards)
    if len(plan.shards) < 2:
        return FanOutDecision(False, "one shard: no fan-out")
    if min_suite_seconds is None or min_suite_seconds <= 0:
        why = "count set explicitly" if min_suite_seconds is None else "min_suite_seconds = 0"
        return FanOutDecision(True, f"{len(plan.shards)} shards ({why})", plan.total_seconds)
    if tests == 0 or len(plan.unknown) >= tests:
        return FanOutDecision(False, "no recorded durations yet: tests run here and are "
                              "recorded for the next build's decision")
    predicted = plan.total_seconds
    if predicted < min_suite_seconds:
        return FanOutDecision(False, f"predicted {predicted:.1f} s < {min_suite_seconds:g} s "
                              "(min_suite_seconds): no fan-out", predicted)
    return FanOutDecision(True, f"predicted {predicted:.1f} s >= {min_suite_seconds:g} s "
                          "(min_suite_seconds)", predicted)
