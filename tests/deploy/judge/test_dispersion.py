"""Extra-binomial dispersion: event rates that wobble from second to second (sessions, a
drifting page mix) must not roll healthy canaries back."""
from __future__ import annotations

import numpy as np
import pytest

from greenlight.deploy.judge import Judge
from greenlight.deploy.metric_spec import MetricSpec, series_key
from greenlight.stats.canary import (
    DEFAULT_BETA,
    DEFAULT_BREAKAGE_SHARE,
    Thresholds,
    combined_dispersion,
    dispersion,
    interval_sums,
    ratio_look,
)

SPEC = MetricSpec("m", numerator="e", denominator="r", min_effect=0.1)


def wobbling_second(rng, p, spread, runs, rate=50):
    """Events of one host-second whose rate is p·(1 + spread·z)."""
    rate_now = np.clip(p * (1 + spread * rng.standard_normal(runs)), 0, 1)
    return rng.binomial(rate, rate_now).astype(float)


def dispersed_aa(spread, correct, runs=400, seconds=120, p=0.5, seed=11):
    """Share of healthy 1v1 canaries the ratio test fails, with or without the dispersion."""
    rng = np.random.default_rng(seed)
    t = Thresholds(0.01, DEFAULT_BETA, 1, DEFAULT_BREAKAGE_SHARE)
    a, b = np.zeros(runs), np.zeros(runs)
    sums = np.zeros((4, runs))
    info = np.zeros(runs)
    failed = np.zeros(runs, bool)
    live = np.ones(runs, bool)
    for s in range(1, seconds + 1):
        ea, eb = wobbling_second(rng, p, spread, runs), wobbling_second(rng, p, spread, runs)
        a += ea
        b += eb
        n = np.full(runs, 50.0 * s)
        sums[0], sums[1] = interval_sums(sums[0], sums[1], ea, 50.0)
        sums[2], sums[3] = interval_sums(sums[2], sums[3], eb, 50.0)
        phi = 1.0
        if correct:
            phi = combined_dispersion(dispersion(sums[0], sums[1], a, n), n,
                                      dispersion(sums[2], sums[3], b, n), n)
        fail, ok, info = ratio_look(SPEC, t, a, n, b, n, info, phi)
        failed |= live & fail
        live &= ~(fail | ok)
    return failed.mean()


def test_a_dispersed_aa_is_not_rolled_back():
    # ±30% per-second spread at p = 0.5: a binomial test fails about one canary in five
    assert dispersed_aa(0.3, correct=False) > 0.08
    assert dispersed_aa(0.3, correct=True) <= 0.02  # 1% at alpha, 400 runs: a margin for noise


def test_dispersion_estimates_the_spread_and_is_never_below_binomial():
    rng = np.random.default_rng(5)
    runs, k, p, n = 2000, 200, 0.5, 50.0
    for spread, expected in ((0.0, 1.0), (0.3, 1 + (n - 1) * (p * 0.3) ** 2 / (p * (1 - p)))):
        sums = np.zeros((2, runs))
        events = np.zeros(runs)
        for _ in range(k):
            e = wobbling_second(rng, p, spread, runs)
            events += e
            sums[0], sums[1] = interval_sums(sums[0], sums[1], e, n)
        floor = dispersion(sums[0], sums[1], events, n * k, confidence=0.9)
        bound = dispersion(sums[0], sums[1], events, n * k)
        assert np.all(floor >= 1) and np.all(bound >= floor)
        # the two bounds (q = 0.9 and 0.1) hold the true dispersion between them
        assert np.mean((floor <= expected * 1.001) & (expected <= bound * 1.001)) > 0.75
        if spread == 0:
            assert np.mean(floor == 1.0) > 0.85  # the breakage path sees no dispersion
    # no intervals with requests: nothing is learnt, nothing is divided by zero
    assert dispersion(0.0, 0.0, 0.0, 0.0) == 1.0


def totals(events, requests):
    return {series_key("e"): events, series_key("r"): requests}


@pytest.mark.parametrize("spread,low,high", [(0.0, 1.0, 1.6), (0.3, 3.0, 12.0)])
def test_the_judge_reports_the_dispersion_it_divides_by(spread, low, high):
    rng = np.random.default_rng(2)
    judge = Judge([SPEC], max_window_s=600)
    a = b = 0.0
    for s in range(1, 61):
        a += wobbling_second(rng, 0.5, spread, 1)[0]
        b += wobbling_second(rng, 0.5, spread, 1)[0]
        verdict = judge.observe(totals(a, 50.0 * s), totals(b, 50.0 * s), elapsed_s=s)
    m = verdict.metrics[0]
    assert low <= m.dispersion <= high, m
    assert min(m.canary_dispersion, m.baseline_dispersion) >= 1
    assert '"dispersion"' in verdict.to_json()
