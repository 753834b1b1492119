"""Sequential tests: valid under per-scrape peeking, fast on breakage."""
from __future__ import annotations

import math

import numpy as np
import pytest

from greenlight.deploy.metric_spec import MetricSpec
from greenlight.errors import UsageError
from greenlight.stats import binomial_rate_test
from greenlight.stats.canary import (
    DEFAULT_BETA,
    DEFAULT_BREAKAGE_SHARE,
    DEFAULT_MARGIN,
    DEFAULT_MIN_LOOKS,
    Thresholds,
    ratio_look,
)
from greenlight.stats.sequential import (
    always_valid_p_value,
    breakage_zero_rate,
    breakage_zero_rate_p,
    msprt_p_value,
    overshoot,
    rate_ratio_llr,
    sprt_bounds,
    sprt_decision,
    two_proportion_information,
    two_proportion_llr,
)


def simulate(p, drop, min_effect, k=1, runs=400, seconds=120, rate=50, seed=0,
             direction="lower-is-bad"):
    """Run ``runs`` simulated canaries judged every second, as bench/judge.py does."""
    rng = np.random.default_rng(seed)
    spec = MetricSpec("m", numerator="e", denominator="r", min_effect=min_effect,
                      direction=direction)
    t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE)
    a, b, info = np.zeros(runs), np.zeros(runs), np.zeros(runs)
    state = np.zeros(runs, int)  # 1 fail, -1 pass
    when = np.full(runs, np.nan)
    p_canary = p * (1 - drop) if direction == "lower-is-bad" else min(1.0, p * (1 + drop))
    for s in range(1, seconds + 1):
        a += rng.binomial(rate, p_canary, runs)
        b += rng.binomial(rate * k, p, runs)
        fail, ok, info = ratio_look(spec, t, a, rate * s, b, rate * k * s, info)
        open_ = state == 0
        fail, ok = open_ & fail, open_ & ok
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
    # the goal: >= 95% within 15 s; 9 baseline events at 1v1 (2^-9 <= 0.2% of alpha)
    state, when = simulate(0.02, 1.0, 0.1, runs=1000, seconds=30)
    assert (state == 1).mean() >= 0.99
    assert ((state == 1) & (when <= 15)).mean() >= 0.95


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


def test_overshoot_is_siegmunds_correction_for_small_steps_only():
    assert overshoot(1.25, 1.0) == pytest.approx(0.5826 * 0.5)
    assert overshoot(1.0, 1.0) == 0.0
    assert overshoot(5.0, 1.0) == 0.0  # a step of 2 s.d.: the approximation does not hold
    assert list(overshoot(np.array([0.25, 9.0]), 0.0)) == pytest.approx([0.5826 * 0.5, 0.0])


def test_information_is_the_llr_variance_under_the_null():
    rng = np.random.default_rng(4)
    n = 5000
    a = rng.binomial(n, 0.2, 20000)
    b = rng.binomial(n, 0.2, 20000)
    llr = two_proportion_llr(a, n, b, n, 0.1)
    info = two_proportion_information(a, n, b, n, 0.1)
    assert np.var(llr) == pytest.approx(np.mean(info), rel=0.1)
    assert np.mean(llr) == pytest.approx(-np.mean(info) / 2, rel=0.15)
    assert two_proportion_information(0, 10, 5, 10, 0.1) == 0.0  # under 20 events


def test_siegmund_brings_a_few_looks_test_back_towards_its_alpha_and_sooner():
    """p = 0.5, 10% drop, 1v1: T = 63 s, so each look is a big step; the plain lines lose
    alpha to overshoot and decide late, the corrected ones decide sooner and stay <= alpha."""
    spec = MetricSpec("m", numerator="e", denominator="r", min_effect=0.1)
    rng = np.random.default_rng(6)
    runs = 2000
    results = {}
    for sieg in (False, True):
        t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE, siegmund=sieg)
        state = {}
        for drop in (0.0, 0.1):
            rng = np.random.default_rng(6)
            a, b, info = np.zeros(runs), np.zeros(runs), np.zeros(runs)
            st, when = np.zeros(runs, int), np.full(runs, np.nan)
            for s in range(1, 300):
                a += rng.binomial(50, 0.5 * (1 - drop), runs)
                b += rng.binomial(50, 0.5, runs)
                fail, ok, info = ratio_look(spec, t, a, 50 * s, b, 50 * s, info)
                fail, ok = fail & (st == 0), ok & (st == 0)
                st[fail], st[ok] = 1, -1
                when[fail | ok] = s
            state[drop] = (st, when)
        results[sieg] = state
    false_plain = (results[False][0.0][0] == 1).mean()
    false_sieg = (results[True][0.0][0] == 1).mean()
    assert false_sieg <= 0.015 and false_plain <= false_sieg
    med = {k: np.median(v[0.1][1][v[0.1][0] == 1]) for k, v in results.items()}
    assert med[True] < med[False]


def test_llr_does_not_jump_where_the_exact_test_hands_over_to_the_normal_one():
    """A rate wobbling around the hand-over must not make the test the larger of two
    statistics at each look (0.98% false rollbacks at p = 0.5 vs 19 hosts at 0.8%): across
    it the LLR moves by about one count's worth per count, as the normal LLR does."""
    n_c, n_b, a = 1500, 28500, 690
    b = np.arange(14100, 14400)  # implied baseline rate from 0.493 to 0.503
    llr = two_proportion_llr(a, n_c, b, n_b, 0.09)
    normal = two_proportion_llr(a, n_c, b, n_b, 0.09, method="gaussian")
    assert np.abs(np.diff(llr)).max() <= 2 * np.abs(np.diff(normal)).max()  # the hard switch: 0.1
    # rare rates keep the exact conditional test, frequent ones the normal approximation
    exact_side = two_proportion_llr(60, 1500, 1400, 28500, 0.09)
    assert exact_side != pytest.approx(two_proportion_llr(60, 1500, 1400, 28500, 0.09,
                                                          method="gaussian"), abs=1e-6)
    assert llr[-1] == pytest.approx(normal[-1])


def test_pass_line_closes_on_the_fail_line_at_the_horizon():
    t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE)
    assert t.sprt_alpha == pytest.approx(0.01 * (1 - DEFAULT_BREAKAGE_SHARE - DEFAULT_MARGIN))
    assert t.upper == pytest.approx(math.log(1 / t.sprt_alpha))
    assert float(t.pass_line(0.0)) == pytest.approx(t.lower)
    assert float(t.pass_line(t.horizon)) == pytest.approx(t.upper)
    assert float(t.pass_line(10 * t.horizon)) == pytest.approx(t.upper)
    assert t.lower < float(t.pass_line(t.horizon / 2)) < t.upper
    assert float(t.pass_line(t.horizon / 2, closing=False)) == pytest.approx(t.lower)
    # coarse looks (a few scrapes hold the fixed sample): the horizon is at least min_looks
    step = t.horizon / 4
    assert float(t.pass_line(t.horizon, step)) < t.upper
    assert float(t.horizon_at(step)) == pytest.approx(DEFAULT_MIN_LOOKS * step)
    # the fixed-sample information at the metric's alpha and 95% power, times the factor
    fixed = (0.9 * (2.457 + 1.645)) ** 2
    assert t.horizon == pytest.approx(t.horizon_factor * fixed, rel=0.01)
    wald = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE, horizon_factor=math.inf)
    assert float(wald.pass_line(1e6)) == pytest.approx(wald.lower)
    with pytest.raises(UsageError):
        Thresholds(0.01, DEFAULT_BETA, 1, 0.5, margin=0.5)
    with pytest.raises(UsageError):
        Thresholds(0.01, DEFAULT_BETA, 1, 0.2, horizon_factor=0.0)


def test_every_ratio_verdict_comes_by_the_horizon_and_the_slow_tail_is_cut():
    """p = 0.5, 10% drop vs 19 hosts (T = 33 s): with Wald's open pass line a few slow
    canaries take minutes; with the closing one every canary is decided by the horizon,
    the p95 time to fail stays under 1.3 T and detection and false rollbacks hold."""
    horizon_s = {}
    for drop in (0.0, 0.1):
        state, when = simulate(0.5, drop, 0.1, k=19, runs=1000, seconds=200, seed=11)
        assert (state != 0).all()
        horizon_s[drop] = np.nanmax(when)
        if drop:
            assert (state == 1).mean() >= 0.95
            assert np.percentile(when[state == 1], 95) <= 1.3 * 33.1
        else:
            assert (state == 1).mean() <= 0.015
    t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE)
    # information per second at 50 + 950 requests/s, p = 0.5, aim 0.9 x 10%
    per_second = (0.09 * 0.5) ** 2 / (0.25 * (1 / 50 + 1 / 950))
    assert max(horizon_s.values()) <= math.ceil(t.horizon / per_second) + 1
