"""Sequential tests: valid under per-scrape peeking, fast on breakage."""
from __future__ import annotations

import math

import numpy as np
import pytest

from greenlight.deploy.judge import (
    DEFAULT_BETA,
    DEFAULT_BREAKAGE_SHARE,
    MetricSpec,
    Thresholds,
    ratio_evidence,
)
from greenlight.errors import UsageError
from greenlight.stats import binomial_rate_test
from greenlight.stats.sequential import (
    always_valid_p_value,
    breakage_zero_rate,
    breakage_zero_rate_p,
    msprt_p_value,
    rate_ratio_llr,
    sprt_bounds,
    sprt_decision,
    two_proportion_llr,
)


def simulate(p, drop, min_effect, k=1, runs=400, seconds=120, rate=50, seed=0,
             direction="lower-is-bad"):
    """Run ``runs`` simulated canaries judged every second, as bench/judge.py does."""
    rng = np.random.default_rng(seed)
    spec = MetricSpec("m", numerator="e", denominator="r", min_effect=min_effect,
                      direction=direction)
    t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE)
    a, b = np.zeros(runs), np.zeros(runs)
    state = np.zeros(runs, int)  # 1 fail, -1 pass
    when = np.full(runs, np.nan)
    p_canary = p * (1 - drop) if direction == "lower-is-bad" else min(1.0, p * (1 + drop))
    for s in range(1, seconds + 1):
        a += rng.binomial(rate, p_canary, runs)
        b += rng.binomial(rate * k, p, runs)
        llr, bp = ratio_evidence(spec, a, rate * s, b, rate * k * s)
        open_ = state == 0
        fail = open_ & ((llr >= t.upper) | (bp <= t.breakage_alpha))
        ok = open_ & ~fail & (llr <= t.lower)
        state[fail], state[ok] = 1, -1
        when[fail | ok] = s
        if not (state == 0).any():
            break
    return state, when


def test_bounds_are_walds():
    b = sprt_bounds(0.01, 0.05)
    assert b.upper == pytest.approx(math.log(0.95 / 0.01))
    assert b.lower == pytest.approx(math.log(0.05 / 0.99))
    assert sprt_decision(5.0, b) == "fail"
    assert sprt_decision(-3.5, b) == "pass"
    assert sprt_decision(0.0, b) == "pending"
    with pytest.raises(UsageError):
        sprt_bounds(0.6, 0.5)


@pytest.mark.parametrize("p,min_effect,k", [(0.05, 0.5, 1), (0.2, 0.1, 1), (0.5, 0.1, 19),
                                            (0.95, 0.1, 1)])
def test_false_rollback_under_per_second_peeking_stays_below_alpha(p, min_effect, k):
    state, _ = simulate(p, 0.0, min_effect, k=k, runs=600, seconds=240, seed=int(p * 100) + k)
    # 1% expected at most; 600 runs give a binomial s.d. of 0.4%: allow 2% before failing.
    assert (state == 1).mean() <= 0.02
    # and healthy canaries do get passed (not left pending)
    assert (state == -1).mean() >= 0.7


def test_fixed_test_peeked_every_second_would_inflate():
    """The reason for all this: a 1% z-test re-read every second rejects far more often."""
    rng = np.random.default_rng(3)
    runs, p = 600, 0.2
    a, b = np.zeros(runs), np.zeros(runs)
    ever = np.zeros(runs, bool)
    for s in range(1, 61):
        a += rng.binomial(50, p, runs)
        b += rng.binomial(50, p, runs)
        pooled = (a + b) / (100 * s)
        z = (b - a) / (50 * s) / np.sqrt(pooled * (1 - pooled) * 2 / (50 * s))
        ever |= z > 2.326
    assert ever.mean() > 0.04


def test_total_breakage_detected_within_seconds_even_at_two_percent():
    state, when = simulate(0.02, 1.0, 0.1, runs=300, seconds=30)
    assert (state == 1).mean() >= 0.97
    assert np.nanpercentile(when[state == 1], 95) <= 15


def test_ten_percent_drop_at_half_detected_within_a_minute_against_19_hosts():
    state, when = simulate(0.5, 0.1, 0.1, k=19, runs=300, seconds=60, seed=9)
    assert (state == 1).mean() >= 0.95


def test_five_fold_errors_fail_fast():
    state, when = simulate(0.01, 4.0, 1.0, runs=300, seconds=60, direction="higher-is-bad")
    assert (state == 1).mean() >= 0.95
    assert np.nanmedian(when[state == 1]) <= 15


def test_breakage_p_is_the_exact_binomial_tail():
    got = breakage_zero_rate(0, 500, 7, 500, alpha=0.01)
    exact = binomial_rate_test(7, 500, 0, 500, alternative="less").p_value
    assert got.p_value == pytest.approx(exact) == pytest.approx(0.5 ** 7)
    assert got.broken
    assert not breakage_zero_rate(0, 500, 6, 500, alpha=0.01).broken
    assert not breakage_zero_rate(1, 500, 60, 500, alpha=0.01).broken
    assert breakage_zero_rate_p(0, 500, 7, 500) == pytest.approx(0.5 ** 7)
    # unequal traffic: the baseline holds 19/20 of it
    assert breakage_zero_rate_p(0, 50, 100, 950) == pytest.approx(0.95 ** 100)


def test_llr_sign_follows_direction_and_needs_events():
    down = two_proportion_llr(80, 1000, 200, 1000, 0.1, "lower-is-bad")
    up = two_proportion_llr(80, 1000, 200, 1000, 0.1, "higher-is-bad")
    assert down > 0 > up
    assert two_proportion_llr(0, 10, 5, 10, 0.1) == 0.0  # under 20 events: no evidence
    arr = two_proportion_llr(np.array([80, 200]), 1000, np.array([200, 200]), 1000, 0.1)
    assert arr[0] > 0 > arr[1]


def test_rate_ratio_llr_and_always_valid_p():
    assert rate_ratio_llr(10, 100, 2, 100, 5.0) > 0
    assert rate_ratio_llr(2, 100, 10, 100, 5.0) < 0
    assert always_valid_p_value(math.log(100)) == pytest.approx(0.01)
    assert always_valid_p_value(-3.0) == 1.0


def test_msprt_p_is_monotone_and_small_for_big_effects():
    p = 1.0
    seen = []
    for n in (100, 400, 1600, 6400):
        p = msprt_p_value(0.05, 0.25 / n * 2, tau2=0.01, previous_p=p)
        seen.append(p)
    assert seen == sorted(seen, reverse=True)
    assert seen[-1] < 0.001
    assert msprt_p_value(0.0, 0.001, 0.01) == 1.0
