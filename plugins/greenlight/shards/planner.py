"""Duration-balanced shard planning: a pure function from (test ids, durations) to shards.

Why not pytest-split's greedy pass alone: largest-first (LPT) is within 4/3 of the optimum but
often leaves one shard a test or two heavier than it needs to be. We start from several seeds
(LPT, round-robin in collection order, contiguous chunks), improve each by moving or swapping
tests between the heaviest shard and the others until no single move or swap lowers it, and keep
the best. Starting from the baselines themselves guarantees we are never worse than them.

Everything is deterministic: ties break on the test id, never on hash or dict order, so every
shard (and every xdist worker inside a shard) computes the same plan from the same input.
"""
from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from greenlight.errors import UsageError

DEFAULT_UNKNOWN_SECONDS = 1.0
# JUnit rounds times to the millisecond, so fast tests read 0.000; every test still costs
# collection and setup, and a zero weight would let the planner pile them all on one shard.
MIN_SECONDS = 0.001
_EPS = 1e-9
_MAX_ROUNDS = 100_000


@dataclass(frozen=True)
class Shard:
    """One shard: its 1-based index, its tests in collection order, and their predicted time."""

    index: int
    tests: tuple[str, ...]
    predicted_seconds: float


@dataclass(frozen=True)
class Plan:
    """A complete plan: every input test is in exactly one shard."""

    shards: tuple[Shard, ...]
    total_seconds: float
    ideal_seconds: float
    mean_seconds: float  # the suite's mean: the price of an untimed test of an untimed module
    unknown: tuple[str, ...] = ()
    group_by_module: bool = False
    seed: str = "lpt"
    durations_used: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def makespan(self) -> float:
        return max((s.predicted_seconds for s in self.shards), default=0.0)

    def shard_of(self, test_id: str) -> int | None:
        """1-based index of the shard holding ``test_id`` (None when the plan doesn't know it)."""
        for shard in self.shards:
            if test_id in shard.tests:
                return shard.index
        return None

    def to_json(self) -> dict:
        """The JSON contract of ``greenlight shards plan --format json`` (see docs/shards.md)."""
        return {
            "shards": [
                {"index": s.index, "predicted_seconds": round(s.predicted_seconds, 6),
                 "count": len(s.tests), "tests": list(s.tests)}
                for s in self.shards
            ],
            "makespan_seconds": round(self.makespan, 6),
            "ideal_seconds": round(self.ideal_seconds, 6),
            "total_seconds": round(self.total_seconds, 6),
            "mean_seconds": round(self.mean_seconds, 6),
            "unknown": list(self.unknown),
            "group_by_module": self.group_by_module,
            "seed": self.seed,
        }


def module_of(test_id: str) -> str:
    """The module part of a pytest node id (``tests/a.py::T::t[1]`` -> ``tests/a.py``)."""
    return test_id.split("::", 1)[0]


def parse_test_ids(text: str) -> list[str]:
    """Test ids, one per line, as ``pytest --collect-only -q`` prints them; its summary line
    ("12 tests collected in 0.1s"), banners and blank lines are skipped."""
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("=", "-")) or (" " in line and "::" not in line):
            continue
        ids.append(line)
    return ids


def unknown_prices(test_ids: Iterable[str], durations: Mapping[str, float]
                   ) -> tuple[dict[str, float], float]:
    """(module -> mean known duration, the suite's mean): what a test without a recorded
    duration is priced at, its module's mean first. The mean, not the median: a suite of many
    fast tests and a few slow ones has a median near 0 s, so with 30% of durations missing the
    median predicted makespans 25-80% low. Falls back to all durations, then 1 s."""
    by_module: dict[str, list[float]] = {}
    for t in test_ids:
        if t in durations:
            by_module.setdefault(module_of(t), []).append(float(durations[t]))
    known = [v for values in by_module.values() for v in values] or \
        [float(v) for v in durations.values()]
    suite = statistics.fmean(known) if known else DEFAULT_UNKNOWN_SECONDS
    return {m: statistics.fmean(v) for m, v in by_module.items()}, suite


def ideal_makespan(weights: Sequence[float], shards: int) -> float:
    """The lower bound every plan is measured against: total/N, or the longest unit if larger."""
    if not weights:
        return 0.0
    return max(sum(weights) / shards, max(weights))


def plan_shards(test_ids: Sequence[str], durations: Mapping[str, float], shards: int,
                group_by_module: bool = False) -> Plan:
    """Split ``test_ids`` into ``shards`` groups of nearly equal predicted duration.

    ``durations`` maps test id -> seconds (extra ids are ignored); tests without a duration get
    the mean of their module's known ones, else the suite's mean (``unknown_prices``). With ``group_by_module`` all tests of one module stay in one
    shard (module-scoped fixtures run once). Duplicated ids are planned once.
    """
    if shards < 1:
        raise UsageError(f"shard count must be >= 1, got {shards}")
    ordered = list(dict.fromkeys(test_ids))
    for d_id, seconds in durations.items():
        if seconds is None or float(seconds) < 0 or float(seconds) != float(seconds):
            raise UsageError(f"duration of {d_id!r} must be a number >= 0, got {seconds!r}")
    module_mean, suite_mean = unknown_prices(ordered, durations)
    weight = {t: max(float(durations[t]) if t in durations
                     else module_mean.get(module_of(t), suite_mean), MIN_SECONDS)
              for t in ordered}
    unknown = tuple(t for t in ordered if t not in durations)

    # Units are what the planner moves around: single tests, or whole modules.
    if group_by_module:
        unit_members: dict[str, list[str]] = {}
        for t in ordered:
            unit_members.setdefault(module_of(t), []).append(t)
    else:
        unit_members = {t: [t] for t in ordered}
    units = list(unit_members)
    unit_weight = {u: sum(weight[t] for t in unit_members[u]) for u in units}

    ideal = ideal_makespan(list(unit_weight.values()), shards)
    best_assign = _seed_lpt(units, unit_weight, shards)
    _improve(best_assign, unit_weight, shards, ideal)
    best_seed, best_key = "lpt", _key(best_assign, unit_weight)
    # The baselines themselves: improve them only when they start out ahead (rare, but it
    # makes "never worse than round-robin or contiguous chunks" a guarantee, not a hope).
    for seed_name, seed in (("round-robin", _seed_round_robin), ("chunks", _seed_chunks)):
        assign = seed(units, unit_weight, shards)
        if _key(assign, unit_weight) < best_key:
            _improve(assign, unit_weight, shards, ideal)
            best_assign, best_seed, best_key = assign, seed_name, _key(assign, unit_weight)

    position = {t: i for i, t in enumerate(ordered)}
    result = []
    for k in range(shards):
        members = sorted((t for u in best_assign[k] for t in unit_members[u]),
                         key=position.__getitem__)
        result.append(Shard(index=k + 1, tests=tuple(members),
                            predicted_seconds=sum(weight[t] for t in members)))
    total = sum(weight.values())
    return Plan(shards=tuple(result), total_seconds=total,
                ideal_seconds=ideal,
                mean_seconds=suite_mean, unknown=unknown, group_by_module=group_by_module,
                seed=best_seed, durations_used=weight)


def round_robin(test_ids: Sequence[str], shards: int) -> list[list[str]]:
    """The naive baseline: test k goes to shard k mod N (used by tests and the benchmark)."""
    groups: list[list[str]] = [[] for _ in range(shards)]
    for k, t in enumerate(dict.fromkeys(test_ids)):
        groups[k % shards].append(t)
    return groups


# --- seeds -------------------------------------------------------------------------------------

def _seed_lpt(units: list[str], w: Mapping[str, float], n: int) -> list[list[str]]:
    """Longest processing time first: heaviest unit onto the lightest shard (ties: lowest index).

    Same order and tie-breaks as pytest-split's least_duration, so the improved plan can only
    be as good or better than it.
    """
    assign: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for u in sorted(units, key=lambda u: (-w[u], u)):
        k = min(range(n), key=lambda i: (loads[i], i))
        assign[k].append(u)
        loads[k] += w[u]
    return assign


def _seed_round_robin(units: list[str], w: Mapping[str, float], n: int) -> list[list[str]]:
    assign: list[list[str]] = [[] for _ in range(n)]
    for k, u in enumerate(units):
        assign[k % n].append(u)
    return assign


def _seed_chunks(units: list[str], w: Mapping[str, float], n: int) -> list[list[str]]:
    """Contiguous slices of about total/N each, in collection order (pytest-split's chunks)."""
    assign: list[list[str]] = [[] for _ in range(n)]
    target = sum(w.values()) / n
    k, load = 0, 0.0
    for u in units:
        if load >= target and k < n - 1:
            k, load = k + 1, 0.0
        assign[k].append(u)
        load += w[u]
    return assign


# --- improvement -------------------------------------------------------------------------------

def _key(assign: list[list[str]], w: Mapping[str, float]) -> tuple:
    """Order of goodness: smaller makespan, then a flatter profile (sorted loads, descending)."""
    loads = sorted((sum(w[u] for u in a) for a in assign), reverse=True)
    return tuple(round(x, 9) for x in loads)


def _improve(assign: list[list[str]], w: Mapping[str, float], n: int,
             ideal: float = 0.0) -> None:
    """Move or swap units between the heaviest shard and another while that lowers the heavier.

    Each accepted step strictly lowers the heaviest shard's load without lifting any other shard
    to it, so the sorted load vector decreases and the loop ends. It also ends once the heaviest
    shard is within a millionth of the ideal (a lower bound): nothing measurable is left.
    Partners are tried lightest first and the first one that allows a gain is taken, which keeps
    a round cheap on suites of tens of thousands of tests.
    """
    if n < 2:
        return
    loads = [sum(w[u] for u in a) for a in assign]
    # Per shard, its units sorted by (weight, id), kept sorted as units move.
    ranked = [sorted((w[u], u) for u in a) for a in assign]
    for _ in range(_MAX_ROUNDS):
        heavy = max(range(n), key=lambda i: (loads[i], -i))
        if loads[heavy] <= ideal * (1 + 1e-6):
            break
        best = None
        for other in sorted((i for i in range(n) if i != heavy), key=lambda i: (loads[i], i)):
            gap = loads[heavy] - loads[other]
            if gap <= _EPS:
                break  # partners are sorted by load: none further can help
            best = _best_step(ranked[heavy], ranked[other], loads[heavy], loads[other], gap)
            if best is not None:
                best = (*best, other)
                break
        if best is None:
            break
        _, a, b, other = best
        for unit, src, dst in ((a, heavy, other), (b, other, heavy)):
            if unit is None:
                continue
            ranked[src].remove((w[unit], unit))
            bisect.insort(ranked[dst], (w[unit], unit))
            loads[src] -= w[unit]
            loads[dst] += w[unit]
    for k in range(n):
        assign[k][:] = [u for _, u in ranked[k]]


def _best_step(heavy: list[tuple[float, str]], other: list[tuple[float, str]], load_heavy: float,
               load_other: float, gap: float) -> tuple[float, str, str | None] | None:
    """The move (unit of ``heavy`` to ``other``) or swap lowering max(loads) of the pair most:
    the ideal transfer is gap/2. Returns (new pair max, unit from heavy, unit from other|None)."""
    best = None
    target = gap / 2
    # Move: weight d in (0, gap) lowers the pair's max to max(LA - d, LB + d).
    pos = bisect.bisect_left(heavy, (target, ""))
    for j in (pos - 1, pos):
        if 0 <= j < len(heavy):
            d, u = heavy[j]
            if _EPS < d < gap - _EPS:
                cand = (max(load_heavy - d, load_other + d), u, None)
                if best is None or cand[0] < best[0] - _EPS:
                    best = cand
    # Swap a (heavy) with b (other): d = w[a] - w[b] in (0, gap), best near gap/2.
    other_weights = [x for x, _ in other]
    for wa, a in heavy:
        if wa <= _EPS:
            continue
        k = bisect.bisect_left(other_weights, wa - target)
        for j in (k - 1, k):
            if 0 <= j < len(other):
                wb, b = other[j]
                d = wa - wb
                if _EPS < d < gap - _EPS:
                    cand = (max(load_heavy - d, load_other + d), a, b)
                    if best is None or cand[0] < best[0] - _EPS:
                        best = cand
    if best is None or best[0] >= load_heavy - _EPS:
        return None
    return best
