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

import numpy as np
from greenlight.stats.distributions import norm

from greenlight.errors import UsageError

__all__ = ["MannWhitneyResult", "bucket_counts_from_cumulative", "mann_whitney_buckets",
           "superiority_arrays", "superiority_design_effect", "BLOCK"]


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


def superiority_arrays(first, second):
    """Vectorised ``(superiority, superiority_variance)`` of :func:`mann_whitney_buckets`
    (the tie-corrected null variance) for bucket counts of shape (..., buckets); 0.5 and 0
    where an arm is empty or everything is tied. The benchmark runs thousands of canaries
    through it; the judge runs it on one."""
    c, b = np.asarray(first, float), np.asarray(second, float)
    n1, n2 = c.sum(-1), b.sum(-1)
    n = n1 + n2
    below = np.cumsum(b, -1) - b
    u = (c * (below + b / 2)).sum(-1)
    t = c + b
    tie = (t ** 3 - t).sum(-1)
    ok = (n1 > 0) & (n2 > 0) & (n >= 2)
    pairs = np.where(ok, n1 * n2, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_u = n1 * n2 / 12 * ((n + 1) - tie / np.where(ok, n * (n - 1), 1.0))
    var_u = np.where(ok & (var_u > 0), var_u, 0.0)
    superiority = np.where(ok, u / pairs, 0.5)
    variance = var_u / pairs ** 2
    if superiority.ndim == 0:
        return float(superiority), float(variance)
    return superiority, variance


# Slow spells on a loaded machine last seconds, not one scrape: the between-interval variance
# is also taken over blocks of this many consecutive intervals, and the larger one is kept.
BLOCK = 5


def superiority_design_effect(first_intervals, second_intervals, block=None):
    """How much more P(first slower) varies than independent requests allow:
    ``(design effect, intervals)`` from bucket counts per scrape interval, arrays of shape
    (..., intervals, buckets) (the same buckets in the same order, lowest first).

    The probability of superiority is, to first order (its Hájek projection), a mean of one
    placement per request: a first-arm request in bucket k scores the share of the second arm
    below it (+½ the share tied with it), a second-arm request the share of the first arm above
    it. Summing each interval's placement residuals gives the interval's contribution z_i to
    the estimate. If requests are independent, Σ z_i² · G/(G − 1) estimates the same variance
    as the per-request sum (DeLong's); when a host stalls and every request it serves in that
    second is slow together, the stalled interval's z_i is large and the ratio says by how much
    the independent variance understates the truth (a cluster-robust "sandwich" variance, as in
    Obuchowski 1997 for clustered ROC areas). A stall that hits both arms in the same interval
    cancels within it. Slow spells last several seconds on a loaded machine, so the same sum is
    also taken over blocks of ``block`` (default ``BLOCK``) consecutive intervals in time order
    (batch means) and the larger of the two is kept. 1 where fewer than two intervals hold
    requests (nothing to compare).

    The ratio is noisy with few intervals or blocks (≈ χ²/df under independence; the larger of
    two such is biased up): callers inflate by it, never deflate, do not decide on fewer than a
    handful of intervals, and allow for its few degrees of freedom.
    """
    c, b = np.asarray(first_intervals, float), np.asarray(second_intervals, float)
    if c.shape != b.shape or c.ndim < 2:
        raise UsageError(f"both arms need counts per interval and bucket of one shape "
                         f"(got {c.shape} and {b.shape})")
    first, second = c.sum(-2), b.sum(-2)  # per bucket, whole window
    n1, n2 = first.sum(-1), second.sum(-1)
    ok = (n1 > 0) & (n2 > 0)
    s1, s2 = np.where(ok, n1, 1.0)[..., None], np.where(ok, n2, 1.0)[..., None]
    below = np.cumsum(second, -1) - second
    above = first.sum(-1, keepdims=True) - np.cumsum(first, -1)
    place1 = (below + second / 2) / s2  # a first-arm request in bucket k
    place2 = (above + first / 2) / s1  # a second-arm request in bucket k
    superiority = (first * place1).sum(-1, keepdims=True) / s1
    w1, w2 = (place1 - superiority) / s1, (place2 - superiority) / s2
    z = (c * w1[..., None, :]).sum(-1) + (b * w2[..., None, :]).sum(-1)
    intervals = ((c.sum(-1) + b.sum(-1)) > 0).sum(-1)
    g = np.maximum(intervals, 2)
    between = (z ** 2).sum(-1) * g / (g - 1)
    # a slow spell covers several neighbouring intervals: the same sum over blocks of
    # ``block`` consecutive intervals (time order; the last block may be shorter)
    size = BLOCK if block is None else int(block)
    count = z.shape[-1]
    blocks = -(-count // size) if size > 1 else 0
    if blocks >= 2:
        pad = np.zeros(z.shape[:-1] + (blocks * size - count,))
        zb = np.concatenate([z, pad], -1).reshape(z.shape[:-1] + (blocks, size)).sum(-1)
        between = np.maximum(between, (zb ** 2).sum(-1) * blocks / (blocks - 1))
    independent = (first * w1 ** 2).sum(-1) + (second * w2 ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = np.where(ok & (intervals >= 2) & (independent > 0),
                        between / np.where(independent > 0, independent, 1.0), 1.0)
    if deff.ndim == 0:
        return float(deff), int(intervals)
    return deff, intervals
