"""Sequential tests that stay valid when the judge looks at every scrape.

A fixed-sample 1% test re-run every second for a minute rolls back 7–8% of healthy canaries.
Wald's sequential probability ratio test (SPRT) accumulates a log-likelihood ratio (LLR) between
"no change" and "a change of the configured minimum size" and stops the first time it leaves a
band: above ``log((1 − β)/α)`` it fails, below ``log(β/(1 − α))`` it passes. By Ville's
inequality the chance that a healthy canary ever crosses the upper line is at most α, however
often it is looked at; and no test has a smaller expected sample size (Wald & Wolfowitz 1948).

The functions take numpy arrays as well as numbers, so the benchmark runs thousands of simulated
canaries through exactly the code the judge runs. ``msprt_p_value`` is the always-valid mixture
p-value (Johari, Pekelis & Walsh) for experiment results, which have no single effect to aim at.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from greenlight.stats.distributions import norm

from greenlight.errors import UsageError
from greenlight.stats.proportions import binomial_rate_test

__all__ = [
    "BreakageResult",
    "SprtBounds",
    "always_valid_p_value",
    "breakage_zero_rate",
    "breakage_zero_rate_p",
    "gaussian_llr",
    "msprt_critical_z",
    "msprt_mixture_variance",
    "msprt_p_value",
    "msprt_sample_size",
    "overshoot",
    "rate_ratio_llr",
    "sprt_bounds",
    "sprt_decision",
    "two_proportion_information",
    "two_proportion_llr",
]

LOWER_IS_BAD = "lower-is-bad"
HIGHER_IS_BAD = "higher-is-bad"
DIRECTIONS = (LOWER_IS_BAD, HIGHER_IS_BAD)

# Rates up to CONDITIONAL_UP_TO use the exact conditional binomial LLR, rates from GAUSSIAN_FROM
# the normal approximation, and rates between a weighted mean of the two whose weight moves with
# the pooled rate (see two_proportion_llr: a hard switch made the test the larger of two).
CONDITIONAL_UP_TO = 0.3
GAUSSIAN_FROM = 0.5

# Below this many events (of the rarer outcome, both arms together) the normal approximation
# behind the LLR is too rough to trust; the exact breakage path covers those first seconds.
MIN_EVENTS = 20


@dataclass(frozen=True)
class SprtBounds:
    """The two lines of Wald's test on the log-likelihood-ratio scale."""

    alpha: float
    beta: float
    lower: float  # at or below: pass (no change of the minimum size)
    upper: float  # at or above: fail (a change at least the minimum size is likely)

    def as_dict(self) -> dict:
        return asdict(self)


def sprt_bounds(alpha: float = 0.01, beta: float = 0.05) -> SprtBounds:
    """Wald's boundaries for false-alarm rate ``alpha`` and miss rate ``beta``."""
    for value, name in ((alpha, "alpha"), (beta, "beta")):
        if not 0.0 < value < 1.0:
            raise UsageError(f"{name} must be strictly between 0 and 1 (got {value})")
    if alpha + beta >= 1.0:
        raise UsageError(f"alpha + beta must be below 1 (got {alpha} + {beta})")
    return SprtBounds(alpha, beta, math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha))


def sprt_decision(llr, bounds: SprtBounds):
    """"fail" / "pass" / "pending" for one LLR value (numbers only; arrays use the bounds)."""
    if llr >= bounds.upper:
        return "fail"
    if llr <= bounds.lower:
        return "pass"
    return "pending"


def gaussian_llr(estimate, null, alternative, variance):
    """LLR of N(alternative, variance) against N(null, variance) at ``estimate``.

    The estimate of a difference (of rates, of rank probabilities) taken on more and more data
    behaves like a Brownian motion in information time 1/variance, so this is Wald's SPRT for
    its drift. A variance of 0 or less (no data yet) gives 0: no evidence either way.
    """
    estimate, variance = np.asarray(estimate, float), np.asarray(variance, float)
    shift = alternative - null
    safe = np.where(variance > 0, variance, 1.0)
    llr = np.where(variance > 0, shift * (estimate - (null + alternative) / 2) / safe, 0.0)
    return llr if llr.ndim else float(llr)


def two_proportion_llr(canary_events, canary_trials, baseline_events, baseline_trials,
                       min_effect: float, direction: str = LOWER_IS_BAD,
                       model: str = "binomial", min_events: int = MIN_EVENTS,
                       method: str = "conditional"):
    """Wald's LLR for "the canary's rate is ``min_effect`` (relative) worse than the
    baseline's" against "both rates are equal", from request counts of both arms.

    Harm is baseline − canary for a lower-is-bad rate (logins per request) and canary −
    baseline for a higher-is-bad one (errors per request); the alternative is a harm of
    ``min_effect`` × the baseline rate that the pooled rate implies under that alternative.
    Rates up to ``CONDITIONAL_UP_TO`` use the exact conditional binomial SPRT
    (``method="conditional"``); from ``GAUSSIAN_FROM``, or with ``method="gaussian"``, the
    normal approximation with the pooled binomial variance p(1 − p)(1/n_c + 1/n_b)
    (``model="poisson"`` uses p instead of p(1 − p), for amounts per request such as revenue).
    Between the two the LLR is w·conditional + (1 − w)·normal with w falling linearly in the
    pooled rate: both are LLRs of nearly the same alternative, and for a fixed w exp(of the
    mean) is at most the mean of the two likelihood ratios, a martingale. But w moves with the
    pooled rate, which the data set, so the blend is not strictly a likelihood-ratio
    martingale: its false-rollback rate rests on simulation (16,000-run checks, docs/judge.md).
    A hard switch at ½ made a rate wobbling around it take whichever of two statistics was
    larger at each look: 0.98% false rollbacks at p = 0.5 against 19 hosts where the SPRT was
    set for 0.8% (0.76% with the normal approximation alone). Until the rarer outcome has
    ``min_events`` events the LLR is 0.
    """
    a, b, n_c, n_b, pooled, share_c, tilt, implied_baseline, variance = _two_proportion_parts(
        canary_events, canary_trials, baseline_events, baseline_trials, min_effect, direction,
        model, min_events)
    rate_c, rate_b = _rates(a, n_c, b, n_b)
    harm = rate_b - rate_c if direction == LOWER_IS_BAD else rate_c - rate_b
    llr = np.asarray(gaussian_llr(harm, 0.0, min_effect * implied_baseline, variance))
    if method not in ("conditional", "gaussian"):
        raise UsageError(f"method must be conditional or gaussian (got {method!r})")
    if method == "conditional" and model == "binomial":
        # rare outcomes: the exact conditional binomial (skewed counts, small numbers)
        band = GAUSSIAN_FROM - CONDITIONAL_UP_TO
        weight = np.clip((GAUSSIAN_FROM - implied_baseline) / band, 0.0, 1.0)
        base = np.where(weight > 0, np.minimum(implied_baseline, GAUSSIAN_FROM), 0.25)
        exact = _conditional_llr(a, n_c, b, n_b, base, tilt)
        blended = weight * exact + (1 - weight) * llr
        llr = np.where((weight > 0) & (variance > 0), blended, llr)
    return llr if llr.ndim else float(llr)


def two_proportion_information(canary_events, canary_trials, baseline_events, baseline_trials,
                               min_effect: float, direction: str = LOWER_IS_BAD,
                               model: str = "binomial", min_events: int = MIN_EVENTS):
    """How much the LLR of :func:`two_proportion_llr` has learnt so far: its variance under the
    null, (alternative shift)² / variance of the difference of rates (0 before ``min_events``).

    The LLR drifts by ∓ half of it under the null / the alternative. Its growth between two
    looks is the variance of the LLR's step, which tells how far the LLR may overshoot a line
    between looks (Siegmund's correction, :func:`overshoot`).
    """
    parts = _two_proportion_parts(canary_events, canary_trials, baseline_events,
                                  baseline_trials, min_effect, direction, model, min_events)
    implied_baseline, variance = parts[7], parts[8]
    with np.errstate(divide="ignore", invalid="ignore"):
        info = np.where(variance > 0, (min_effect * implied_baseline) ** 2
                        / np.where(variance > 0, variance, 1.0), 0.0)
    return info if info.ndim else float(info)


def _rates(a, n_c, b, n_b):
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_c = np.where(n_c > 0, a / np.where(n_c > 0, n_c, 1.0), 0.0)
        rate_b = np.where(n_b > 0, b / np.where(n_b > 0, n_b, 1.0), 0.0)
    return rate_c, rate_b


def _two_proportion_parts(canary_events, canary_trials, baseline_events, baseline_trials,
                          min_effect, direction, model, min_events):
    """The pieces both the LLR and its information are made of (validated arguments)."""
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {DIRECTIONS} (got {direction!r})")
    if model not in ("binomial", "poisson"):
        raise UsageError(f"model must be binomial or poisson (got {model!r})")
    if not min_effect > 0:
        raise UsageError(f"min_effect must be > 0 (got {min_effect})")
    a, n_c = np.asarray(canary_events, float), np.asarray(canary_trials, float)
    b, n_b = np.asarray(baseline_events, float), np.asarray(baseline_trials, float)
    trials = n_c + n_b
    events = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.where(trials > 0, events / np.where(trials > 0, trials, 1.0), 0.0)
        unit = pooled if model == "poisson" else pooled * (1 - pooled)
        inverse = np.where((n_c > 0) & (n_b > 0),
                           1 / np.where(n_c > 0, n_c, 1.0) + 1 / np.where(n_b > 0, n_b, 1.0),
                           0.0)
        share_c = np.where(trials > 0, n_c / np.where(trials > 0, trials, 1.0), 0.0)
    # The baseline rate implied by the pooled rate if the alternative were true: the pooled
    # rate alone, so the alternative does not move with the noise of the difference.
    tilt = -min_effect if direction == LOWER_IS_BAD else min_effect
    implied_baseline = pooled / np.maximum(1 + tilt * share_c, 1e-12)
    rarer = events if model == "poisson" else np.minimum(events, trials - events)
    variance = np.where((rarer >= min_events) & (unit * inverse > 0), unit * inverse, 0.0)
    return a, b, n_c, n_b, pooled, share_c, tilt, implied_baseline, variance


def _conditional_llr(a, n_c, b, n_b, base, tilt):
    """Binomial SPRT on events of rate ``base`` (at most ½) given their total count: each
    event falls on the canary with its traffic share under the null, with the share tilted by
    the alternative's rate ratio otherwise. Exact in the rare-event (Poisson) limit; for a rate
    q the conditional binomial overstates the variance by 1/(1 − q), so the LLR is scaled by
    that factor to match the two-sample binomial information."""
    ratio = np.clip(1 + tilt, 0.0, None) * np.ones_like(base)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = n_c + n_b
        share0 = np.where(total > 0, n_c / np.where(total > 0, total, 1.0), 0.5)
        share1 = ratio * share0 / (ratio * share0 + (1 - share0))
        on_canary = np.where(a > 0, a * np.log(np.where(share1 > 0, share1 / share0, 1.0)), 0.0)
        on_canary = np.where((share1 <= 0) & (a > 0), -np.inf, on_canary)
        llr = on_canary + b * np.log((1 - share1) / (1 - share0))
        pooled = np.where(total > 0, (a + b) / np.where(total > 0, total, 1.0), 0.0)
        llr = llr / np.maximum(1 - pooled, 1e-9)
    return np.where((n_c > 0) & (n_b > 0) & (base > 0), llr, 0.0)


# Siegmund's constant: a Gaussian random walk read at discrete steps of standard deviation σ
# crosses a line b about when Brownian motion crosses b + ρσ (Siegmund 1985, "Sequential
# Analysis", ch. X; ρ = −ζ(½)/√(2π)).
SIEGMUND_RHO = 0.5826
# Above this step (in LLR standard deviations; a few scrapes hold the whole fixed-sample size)
# the diffusion approximation behind the correction does not hold: no correction.
MAX_OVERSHOOT_STEP = 1.0


def overshoot(information, previous_information):
    """Siegmund's correction for a test read once per scrape rather than continuously: ρ × the
    standard deviation of the LLR's step since the previous look (its information growth);
    0 for a step above ``MAX_OVERSHOOT_STEP`` (the approximation needs small steps).

    Wald's lines hold for a path watched continuously; read at discrete looks the LLR jumps
    over a line and stops later than it should, and the error rates fall below their settings.
    Moving both lines inward by this much (or adding it to the LLR when testing the upper line
    and taking it off for the lower one) gives the discrete test the error rates and stopping
    times of the continuous one.
    """
    growth = np.clip(np.asarray(information, float) - np.asarray(previous_information, float),
                     0.0, None)
    value = np.where(growth <= MAX_OVERSHOOT_STEP ** 2, SIEGMUND_RHO * np.sqrt(growth), 0.0)
    return value if value.ndim else float(value)


def rate_ratio_llr(canary_events, canary_trials, baseline_events, baseline_trials,
                   ratio: float):
    """Exact conditional LLR for "the canary's rate is ``ratio`` × the baseline's".

    Given N events, each lands on the canary with probability equal to its share of traffic
    under the null, and with the share tilted by ``ratio`` under the alternative; this is the
    binomial SPRT of the breakage fast path (``ratio=5``: errors up five-fold). Exact for rare
    events, so it may be read after every few events.
    """
    if not ratio > 0 or ratio == 1:
        raise UsageError(f"ratio must be > 0 and != 1 (got {ratio})")
    a, n_c = np.asarray(canary_events, float), np.asarray(canary_trials, float)
    b, n_b = np.asarray(baseline_events, float), np.asarray(baseline_trials, float)
    total = n_c + n_b
    ok = (n_c > 0) & (n_b > 0)
    share0 = np.where(ok, n_c / np.where(total > 0, total, 1.0), 0.5)
    share1 = ratio * share0 / (ratio * share0 + (1 - share0))
    llr = np.where(ok, a * np.log(share1 / share0) + b * np.log((1 - share1) / (1 - share0)), 0.0)
    return llr if llr.ndim else float(llr)


@dataclass(frozen=True)
class BreakageResult:
    """The breakage fast path: the canary's rate at zero while the baseline's is not."""

    canary_events: int
    baseline_events: int
    p_value: float
    broken: bool

    def as_dict(self) -> dict:
        return asdict(self)


def breakage_zero_rate(canary_events: int, canary_trials: int, baseline_events: int,
                       baseline_trials: int, alpha: float) -> BreakageResult:
    """Exact binomial test of a canary that has seen none of the events the baseline sees.

    Valid under continuous monitoring without correction: "no canary event among the first N"
    only shrinks as N grows, so the chance it ever holds at p < α is the chance at the first N
    where it could, which is below α. With equal traffic the baseline needs 7 events at 1%.
    """
    if canary_events > 0 or baseline_events == 0 or canary_trials == 0:
        return BreakageResult(canary_events, baseline_events, 1.0, False)
    result = binomial_rate_test(int(baseline_events), int(baseline_trials), 0,
                                int(canary_trials), alternative="less")
    return BreakageResult(0, int(baseline_events), result.p_value, result.p_value <= alpha)


def breakage_zero_rate_p(canary_events, canary_trials, baseline_events, baseline_trials):
    """Vectorised p-value of :func:`breakage_zero_rate` (1 where the canary saw events):
    P(all N events on the baseline) = (baseline share)^N, the same exact binomial tail."""
    a, n_c = np.asarray(canary_events, float), np.asarray(canary_trials, float)
    b, n_b = np.asarray(baseline_events, float), np.asarray(baseline_trials, float)
    total = n_c + n_b
    share_b = np.where(total > 0, n_b / np.where(total > 0, total, 1.0), 1.0)
    p = np.where((a == 0) & (b > 0) & (n_c > 0), share_b ** b, 1.0)
    return p if p.ndim else float(p)


def always_valid_p_value(max_llr) -> float:
    """p-value valid at any stopping time: 1 / (largest likelihood ratio seen so far).

    Ville's inequality bounds P(sup LR ≥ 1/α) by α under the null, which lets Holm or
    Bonferroni combine the judge's metrics at every look.
    """
    value = np.minimum(1.0, np.exp(-np.maximum(np.asarray(max_llr, float), -700.0)))
    return value if value.ndim else float(value)


def msprt_p_value(estimate: float, variance: float, tau2: float,
                  previous_p: float = 1.0) -> float:
    """Always-valid p-value of the normal-mixture SPRT (Johari, Pekelis & Walsh 2015).

    ``estimate`` is the observed difference, ``variance`` its variance, ``tau2`` the variance of
    the effects one expects (the mixture). The ratio is
    √(V/(V+τ²))·exp(τ²θ²/(2V(V+τ²))); the p-value is the running minimum of 1/ratio, so pass
    the previous look's value as ``previous_p``.
    """
    if variance <= 0 or tau2 <= 0:
        return previous_p
    ratio_log = 0.5 * math.log(variance / (variance + tau2)) + \
        tau2 * estimate ** 2 / (2 * variance * (variance + tau2))
    return min(previous_p, 1.0, math.exp(-ratio_log) if ratio_log < 700 else 0.0)


def _mixture_ratio(alpha: float) -> float:
    """τ²/V at which the two-sided normal-mixture SPRT at ``alpha`` rejects at the smallest
    |z| when read once at variance V (a one-dimensional minimisation, solved on a grid)."""
    ratios = np.exp(np.linspace(math.log(0.5), math.log(1000.0), 4000))
    return float(ratios[np.argmin(_critical_z2(ratios, alpha))])


def _critical_z2(ratio, alpha: float):
    ratio = np.asarray(ratio, float)
    return (2 * math.log(1 / alpha) + np.log1p(ratio)) * (1 + ratio) / ratio


def msprt_critical_z(alpha: float) -> float:
    """|z| the mixture SPRT tuned at this look (τ² = best ratio × V) needs to reach
    ``alpha``: about 3.0 at 5% where a fixed-sample test needs 1.96."""
    return float(math.sqrt(_critical_z2(_mixture_ratio(alpha), alpha)))


def msprt_mixture_variance(planned_variance: float, alpha: float) -> float:
    """The mixture variance τ² that makes :func:`msprt_p_value` most powerful when read at
    the planned sample size, where the estimate's variance is ``planned_variance``: tuned to
    the planned effect instead of centred on it (τ² = effect², the usual choice, reaches
    significance by the planned size in fewer than half of the experiments it was sized for)."""
    if not planned_variance > 0:
        raise UsageError(f"planned_variance must be > 0 (got {planned_variance})")
    return _mixture_ratio(alpha) * planned_variance


def msprt_sample_size(effect: float, unit_variance: float, alpha: float,
                      power: float = 0.8) -> int:
    """Users per branch for the always-valid test to reach ``power`` at ``effect`` when the
    estimate's variance is ``unit_variance`` / n (two branches: the sum of both per-user
    variances): n = (z_crit + z_power)² · unit_variance / effect²."""
    if not effect or not unit_variance > 0:
        raise UsageError(f"effect must be != 0 and unit_variance > 0 (got {effect}, "
                         f"{unit_variance})")
    z = msprt_critical_z(alpha) + float(norm.isf(1 - power))
    return int(math.ceil(z * z * unit_variance / effect ** 2))

