"""Mann-Whitney U on histogram buckets: compare two latency distributions from Prometheus
bucket counts alone, without the raw request timings.

Every request that fell in the same bucket is a tie, so the rank sum uses mid-ranks and the
variance carries the tie correction; the result equals scipy's ``mannwhitneyu`` (asymptotic,
no continuity correction) on raw samples rounded to their bucket. The probability of
superiority P(canary slower) + ½·P(tie) is what the sequential judge watches: 0.5 means "the
same", and its variance shrinks like 1/n as requests come in.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy.stats import norm

from greenlight.errors import UsageError

__all__ = ["MannWhitneyResult", "mann_whitney_buckets", "bucket_counts_from_cumulative"]


@dataclass(frozen=True)
class MannWhitneyResult:
    """U of the first sample (canary), its z-score and p-values, and the probability of
    superiority with its variance. ``p_greater``: the first sample tends to be larger."""

    n1: int
    n2: int
    u: float
    mean_u: float
    variance_u: float
    z: float
    p_two_sided: float
    p_greater: float
    p_less: float
    superiority: float          # P(X1 > X2) + ½·P(X1 = X2)
    superiority_variance: float

    def as_dict(self) -> dict:
        return asdict(self)


def bucket_counts_from_cumulative(cumulative: Sequence[float]) -> list[float]:
    """Prometheus ``_bucket`` series are cumulative (le=0.1 counts everything up to 0.1);
    turn them, ordered by ``le``, into counts per bucket. A negative step means the buckets
    were read from different scrapes: an error rather than a negative count."""
    counts, previous = [], 0.0
    for index, value in enumerate(cumulative):
        step = value - previous
        if step < -1e-9:
            raise UsageError(f"cumulative bucket counts decrease at bucket {index} "
                             f"({previous} then {value}): buckets must come from one scrape")
        counts.append(max(step, 0.0))
        previous = value
    return counts


def mann_whitney_buckets(first: Sequence[float], second: Sequence[float]) -> MannWhitneyResult:
    """Mann-Whitney U of two samples given as counts per ordered bucket (same buckets, same
    order, lowest first). Counts may be floats (deltas of counters) but must be >= 0."""
    if len(first) != len(second):
        raise UsageError(f"both samples need the same buckets ({len(first)} vs {len(second)})")
    if any(c < 0 for c in first) or any(c < 0 for c in second):
        raise UsageError("bucket counts must be >= 0")
    n1, n2 = float(sum(first)), float(sum(second))
    n = n1 + n2
    u = 0.0
    below_second = 0.0
    tie_term = 0.0
    for c1, c2 in zip(first, second):
        u += c1 * (below_second + c2 / 2)
        below_second += c2
        t = c1 + c2
        tie_term += t ** 3 - t
    mean_u = n1 * n2 / 2
    if n1 == 0 or n2 == 0 or n < 2:
        return MannWhitneyResult(int(n1), int(n2), u, mean_u, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.0)
    variance_u = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance_u <= 0:  # everything in one bucket: no information about order
        return MannWhitneyResult(int(n1), int(n2), u, mean_u, 0.0, 0.0, 1.0, 1.0, 1.0,
                                 u / (n1 * n2), 0.0)
    z = (u - mean_u) / math.sqrt(variance_u)
    return MannWhitneyResult(int(n1), int(n2), u, mean_u, variance_u, z,
                             float(min(1.0, 2 * norm.sf(abs(z)))), float(norm.sf(z)),
                             float(norm.cdf(z)), u / (n1 * n2), variance_u / (n1 * n2) ** 2)
