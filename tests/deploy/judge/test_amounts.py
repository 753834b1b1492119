"""Revenue per request: amounts, not 0/1 events. With a counter of the squared amounts the judge
counts revenue in units of sum(x^2)/sum(x), so its Poisson variance is the amounts' own; with a
fixed "typical purchase" unit, amounts that vary look far more significant than they are."""
from __future__ import annotations

import numpy as np
import pytest

from greenlight.deploy.judge import Judge
from greenlight.deploy.metric_spec import MetricSpec, series_key
from greenlight.deploy.metrics import needed_names
from greenlight.errors import SettingsError

AMOUNTS = np.array([5.0, 200.0])   # most purchases small, one in ten large
CHANCES = np.array([0.9, 0.1])
PURCHASE_RATE = 0.1
RPS = 100


def revenue(squares: bool, unit: float = 25.0) -> MetricSpec:
    return MetricSpec("revenue per request", numerator="demo_revenue_total",
                      denominator="demo_requests_total", model="poisson", unit=unit,
                      squares="demo_revenue_squared_total" if squares else "",
                      direction="lower-is-bad", min_effect=0.5, breakage=False)


def totals(requests, amount, squared):
    return {series_key("demo_requests_total"): requests,
            series_key("demo_revenue_total"): amount,
            series_key("demo_revenue_squared_total"): squared}


def canary_run(spec: MetricSpec, rng, scale: float = 1.0, seconds: int = 60) -> str:
    """One canary against one baseline host; the canary's amounts multiplied by ``scale``."""
    judge = Judge([spec], max_window_s=seconds, on_timeout="pass")
    arms = np.zeros((2, 3))
    for s in range(1, seconds + 1):
        for i, factor in enumerate((scale, 1.0)):
            buys = rng.binomial(RPS, PURCHASE_RATE)
            amounts = rng.choice(AMOUNTS, size=buys, p=CHANCES) * factor
            arms[i] += (RPS, amounts.sum(), (amounts ** 2).sum())
        verdict = judge.observe(totals(*arms[0]), totals(*arms[1]), elapsed_s=s)
        if verdict.outcome != "pending":
            return verdict.outcome
    return verdict.outcome


def test_varying_amounts_do_not_roll_back_a_healthy_canary_with_the_squares_counter():
    rng = np.random.default_rng(20261126)
    with_squares = [canary_run(revenue(True), rng) for _ in range(200)]
    fixed_unit = [canary_run(revenue(False), rng, seconds=30) for _ in range(100)]
    assert with_squares.count("fail") <= 4          # alpha 1%: 200 runs see ~2 (this seed: 1)
    # counting in "typical purchases" of 25 understates the variance (sum(x^2)/sum(x) = 164
    # here: about a quarter of healthy canaries rolled back with the binomial variance); the
    # spread between scrape intervals shows the same understatement as a dispersion above 1,
    # and the test divides by it
    assert fixed_unit.count("fail") <= 3


def test_revenue_halved_on_the_canary_is_rolled_back():
    rng = np.random.default_rng(7)
    outcomes = [canary_run(revenue(True), rng, scale=0.5) for _ in range(30)]
    assert outcomes.count("fail") >= 28, outcomes   # this seed: all 30 within 60 s


def test_squares_settings_and_what_is_scraped():
    spec = MetricSpec.from_settings({
        "name": "revenue", "numerator": "demo_revenue_total", "model": "poisson",
        "denominator": "demo_requests_total", "squares": "demo_revenue_squared_total"})
    assert "demo_revenue_squared_total" in needed_names([spec])
    with pytest.raises(SettingsError, match="squares.*poisson"):
        MetricSpec("x", numerator="a", denominator="b", squares="c")
    judge = Judge([spec])
    verdict = judge.observe(totals(1000, 2800.0, 208000.0), totals(1000, 2600.0, 200000.0),
                            elapsed_s=10)
    (metric,) = verdict.metrics
    assert metric.unit == pytest.approx(408000.0 / 5400.0)     # pooled over both arms
    assert metric.canary_events == pytest.approx(2800.0 / metric.unit)
    assert metric.baseline_events == pytest.approx(2600.0 / metric.unit)


def test_an_arm_without_the_squares_counter_falls_back_to_the_fixed_unit():
    """A canary whose release adds the counter, against a baseline on the release before it:
    pooling the canary's squares with both arms' amounts would shrink the unit 20-fold."""
    judge = Judge([revenue(True, unit=25.0)])
    old = totals(1000, 2600.0, 0.0)
    del old[series_key("demo_revenue_squared_total")]
    (metric,) = judge.observe(totals(1000, 2800.0, 208000.0), old, elapsed_s=10).metrics
    assert metric.unit == 25.0
