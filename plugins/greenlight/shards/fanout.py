"""Whether verify builds fan their tests out to shard builds: two pure decisions.

Per master (``shard_layout``): shard builds only gain when they run on other cores than the
verify build's. Workers that are all local processes share the master's machine, so shards there
compete for the same cores and make the build slower and flakier (a team measured 88 s and
flaky tests). ``[shards] count = "auto"`` therefore fans out (one shard per worker, local and
remote) only when ``[[workers.remote]]`` entries put workers on more than one machine; an
explicit count of 2 or more always fans out.

Per build (``decide_fan_out``): each shard build pays a fixed start-up (checkout, setup, the plugin download, pytest start-up
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
class ShardLayout:
    """``count``: shards of a fanned-out verify build (below 2: verify builds never fan out,
    their tests run in the verify build itself); ``reason``: one line for ``up`` to print."""

    count: int
    reason: str

    @property
    def fans_out(self) -> bool:
        return self.count >= 2


def shard_layout(count: int | str, local_workers: int, remote_workers: int) -> ShardLayout:
    """The shard count for ``[shards] count`` (``"auto"`` or a whole number) given how many
    workers are local processes on the master's machine and how many are ``[[workers.remote]]``
    entries (each assumed on a machine of its own, as its entry says it connects from afar)."""
    workers = local_workers + remote_workers
    if count != "auto":
        if count >= 2:
            return ShardLayout(count, f"fan-out: {count} shards ([shards] count = {count})")
        return ShardLayout(count, f"run here: no fan-out ([shards] count = {count})")
    if workers < 2:
        return ShardLayout(1, f"run here: {workers} worker, nothing to fan out to")
    if remote_workers == 0:
        return ShardLayout(1, f"run here: all {workers} workers are on this machine, where "
                              "shards would share its cores (set [shards] count = N to fan "
                              "out anyway)")
    return ShardLayout(workers, f"fan-out: one shard per worker, {workers} shards ("
                                f"{local_workers} on this machine, {remote_workers} remote) "
                                "for builds predicted to take min_suite_seconds or more")


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
