"""Mann-Whitney U on histogram buckets equals scipy on the raw (bucketed) samples."""
from __future__ import annotations

import numpy as np
import pytest

from greenlight.errors import UsageError
from greenlight.stats.ranks import (
    bucket_counts_from_cumulative,
    mann_whitney_buckets,
    superiority_arrays,
    superiority_design_effect,
)

EDGES = np.array([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, np.inf])


def bucketed(samples: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Round each sample up to its bucket's bound (what a histogram keeps) and count."""
    rounded = EDGES[np.searchsorted(EDGES, samples)]
    return rounded, [int((rounded == e).sum()) for e in EDGES]


@pytest.mark.parametrize("seed,shift,n1,n2", [(0, 0.0, 300, 500), (1, 0.3, 200, 2000),
                                              (2, -0.5, 50, 60), (3, 1.0, 1000, 1000)])
def test_matches_scipy_on_raw_samples_with_ties(seed, shift, n1, n2):
    from scipy.stats import mannwhitneyu  # here: every xdist worker collects this module

    rng = np.random.default_rng(seed)
    x, cx = bucketed(rng.lognormal(-4 + shift, 1.2, n1))
    y, cy = bucketed(rng.lognormal(-4, 1.2, n2))
    ours = mann_whitney_buckets(cx, cy)
    ref = mannwhitneyu(x, y, method="asymptotic", use_continuity=False)
    assert ours.u == pytest.approx(ref.statistic)
    assert ours.p_two_sided == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    greater = mannwhitneyu(x, y, method="asymptotic", use_continuity=False,
                           alternative="greater")
    assert ours.p_greater == pytest.approx(greater.pvalue, rel=1e-9, abs=1e-300)
    assert ours.superiority == pytest.approx(ref.statistic / (n1 * n2))


def test_slower_canary_is_seen_as_slower():
    slow = mann_whitney_buckets([0, 10, 90], [90, 10, 0])
    assert slow.superiority > 0.9 and slow.p_greater < 1e-10
    same = mann_whitney_buckets([10, 20, 30], [10, 20, 30])
    assert same.superiority == pytest.approx(0.5) and same.z == pytest.approx(0.0)


def test_all_in_one_bucket_or_empty_carries_no_information():
    tied = mann_whitney_buckets([0, 40, 0], [0, 70, 0])
    assert tied.p_two_sided == 1.0 and tied.superiority_variance == 0.0
    empty = mann_whitney_buckets([0, 0], [3, 4])
    assert empty.p_two_sided == 1.0


def test_cumulative_buckets_and_bad_input():
    assert bucket_counts_from_cumulative([2, 5, 5, 9]) == [2, 3, 0, 4]
    with pytest.raises(UsageError, match="decrease at bucket 2"):
        bucket_counts_from_cumulative([2, 5, 4])
    with pytest.raises(UsageError, match="same buckets"):
        mann_whitney_buckets([1, 2], [1, 2, 3])
    with pytest.raises(UsageError):
        mann_whitney_buckets([1, -2], [1, 2])


def per_interval(rng, runs, intervals, n, factor=None):
    """Bucket counts (runs, intervals, buckets) of log-normal latencies (median 4 ms);
    ``factor`` (runs, intervals) multiplies every request of an interval (a stall)."""
    x = rng.lognormal(np.log(0.004), 0.6, (runs, intervals, n))
    if factor is not None:
        x = x * factor[..., None]
    k = np.searchsorted(EDGES, x)
    return np.stack([(k == j).sum(-1) for j in range(EDGES.size)], -1).astype(float)


def test_superiority_arrays_match_the_scalar_test():
    rng = np.random.default_rng(5)
    c = per_interval(rng, 4, 3, 40).sum(1)
    b = per_interval(rng, 4, 3, 70).sum(1)
    s, v = superiority_arrays(c, b)
    for i in range(4):
        ref = mann_whitney_buckets(list(c[i]), list(b[i]))
        assert s[i] == pytest.approx(ref.superiority)
        assert v[i] == pytest.approx(ref.superiority_variance)
    assert superiority_arrays([0, 5], [0, 3]) == (0.5, 0.0)  # all tied: no information


def test_design_effect_is_one_for_independent_requests_and_large_for_a_stall():
    rng = np.random.default_rng(6)
    c, b = per_interval(rng, 2000, 20, 50), per_interval(rng, 2000, 20, 50)
    deff, intervals = superiority_design_effect(c, b, block=1)
    assert (intervals == 20).all()
    assert 0.95 < deff.mean() < 1.05  # per interval: unbiased under independence
    blocked, _ = superiority_design_effect(c, b)  # max of intervals and 5-interval blocks
    assert 1.0 < blocked.mean() < 1.5 and (blocked >= deff - 1e-12).all()
    factor = np.ones((2000, 20))
    factor[:, 3] = 8.0  # the canary's host stalls for one second: every request 8x slower
    stalled = per_interval(rng, 2000, 20, 50, factor)
    deff_stall, _ = superiority_design_effect(stalled, b)
    assert np.median(deff_stall) > 3
    # the same stall on both arms in the same second (machine load) cancels within it
    both = per_interval(rng, 2000, 20, 50, factor)
    deff_both, _ = superiority_design_effect(stalled, both)
    assert np.median(deff_both) < 1.5


def test_a_slow_spell_of_several_seconds_is_seen_by_the_blocks():
    rng = np.random.default_rng(7)
    factor = np.ones((2000, 30))
    factor[:, 10:15] = 2.0  # the canary's host is twice as slow for five seconds
    spell = per_interval(rng, 2000, 30, 50, factor)
    b = per_interval(rng, 2000, 30, 50)
    per_second, _ = superiority_design_effect(spell, b, block=1)
    blocked, _ = superiority_design_effect(spell, b)
    assert np.median(blocked) > 2 * np.median(per_second)


def test_design_effect_needs_two_intervals_and_one_shape():
    assert superiority_design_effect([[0, 5, 5]], [[5, 5, 0]]) == (1.0, 1)
    with pytest.raises(UsageError, match="one shape"):
        superiority_design_effect([[1, 2]], [[1, 2, 3]])
