"""Tests on counts of events: the two-proportion z-test, IMVU's D² > N rule, sample sizes,
and the exact binomial test of the deploy judge's breakage fast path.

One place for these formulas so that the canary judge and experiment results agree on what
"significant" means. Pure functions over numbers; scipy supplies the distributions.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from greenlight.stats.distributions import binomtest, norm, optimize

from greenlight.errors import UsageError

__all__ = [
    "TwoProportionResult",
    "two_proportion_test",
    "SeedRuleResult",
    "d_squared_rule",
    "seed_rule_on_rarer_outcome",
    "sample_size_per_arm",
    "detectable_relative_change",
    "BinomialRateResult",
    "binomial_rate_test",
]


def _check_counts(events: int, trials: int, what: str) -> None:
    if trials < 0 or events < 0:
        raise UsageError(f"{what}: counts must be >= 0 (got {events} of {trials})")
    if events > trials:
        raise UsageError(f"{what}: {events} events cannot exceed {trials} trials")


def _check_level(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise UsageError(f"{name} must be strictly between 0 and 1 (got {value})")


@dataclass(frozen=True)
class TwoProportionResult:
    """Rates of both arms, their difference (treatment − control) with a confidence interval,
    and p-values of the pooled z-test. ``p_greater`` tests treatment > control, ``p_less``
    treatment < control."""

    control_events: int
    control_trials: int
    treatment_events: int
    treatment_trials: int
    control_rate: float
    treatment_rate: float
    control_variance: float
    treatment_variance: float
    difference: float
    relative_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    z: float
    p_two_sided: float
    p_greater: float
    p_less: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_two_sided < alpha

    def as_dict(self) -> dict:
        return asdict(self)


def two_proportion_test(control_events: int, control_trials: int, treatment_events: int,
                        treatment_trials: int, confidence: float = 0.95) -> TwoProportionResult:
    """Compare two rates (e.g. logins per user) with the pooled two-proportion z-test.

    The p-value uses the pooled variance (the null says both rates are equal); the confidence
    interval of the difference uses each arm's own variance, as a CI should. The variances
    reported are p(1 − p) per trial, the "variance" column of IMVU's experiment reports. An arm with no trials gives a
    rate of 0 and p-values of 1 (nothing to conclude), never a division by zero.
    """
    _check_counts(control_events, control_trials, "control")
    _check_counts(treatment_events, treatment_trials, "treatment")
    _check_level(confidence, "confidence")
    p_c = control_events / control_trials if control_trials else 0.0
    p_t = treatment_events / treatment_trials if treatment_trials else 0.0
    var_c, var_t = p_c * (1 - p_c), p_t * (1 - p_t)
    diff = p_t - p_c
    relative = diff / p_c if p_c else (0.0 if diff == 0 else math.inf)
    if control_trials == 0 or treatment_trials == 0:
        return TwoProportionResult(control_events, control_trials, treatment_events,
                                   treatment_trials, p_c, p_t, var_c, var_t, diff, relative,
                                   -math.inf, math.inf, confidence, 0.0, 1.0, 1.0, 1.0)
    pooled = (control_events + treatment_events) / (control_trials + treatment_trials)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_trials + 1 / treatment_trials))
    if se_pooled == 0.0:  # both arms all-0 or all-1: identical, nothing to see
        z, p_two, p_gt, p_lt = 0.0, 1.0, 1.0, 1.0
    else:
        z = diff / se_pooled
        p_two = float(min(1.0, 2 * norm.sf(abs(z))))
        p_gt, p_lt = float(norm.sf(z)), float(norm.cdf(z))
    se = math.sqrt(var_c / control_trials + var_t / treatment_trials)
    half = float(norm.isf((1 - confidence) / 2)) * se
    return TwoProportionResult(control_events, control_trials, treatment_events, treatment_trials,
                               p_c, p_t, var_c, var_t, diff, relative, diff - half, diff + half,
                               confidence, z, p_two, p_gt, p_lt)


@dataclass(frozen=True)
class SeedRuleResult:
    """IMVU's rule on two counts: D = (a − b) / 2, N = a + b, significant when D² > k·N."""

    a: int
    b: int
    d: float
    n: int
    factor: float
    significant: bool
    outcome: str = "events"

    def as_dict(self) -> dict:
        return asdict(self)


def d_squared_rule(a: int, b: int, factor: float = 1.0) -> SeedRuleResult:
    """IMVU's 50/50 rule: significant (~95%, two-sided) when D² > N.

    It is a 1-df chi-squared in disguise (|a − b| / √(a + b) > 2). ``factor`` = 1.35 gives the
    one-sided 1% version. Only valid when both arms had the same traffic.
    """
    if a < 0 or b < 0:
        raise UsageError(f"D² > N needs counts >= 0 (got {a} and {b})")
    d = (a - b) / 2
    n = a + b
    return SeedRuleResult(a, b, d, n, factor, d * d > factor * n)


def seed_rule_on_rarer_outcome(control_events: int, control_trials: int, treatment_events: int,
                               treatment_trials: int, factor: float = 1.0) -> SeedRuleResult:
    """Apply D² > N to the rarer outcome of a 50/50 split (events or non-events).

    The rule ignores the (1 − p) factor of a binomial variance, so on a frequent outcome (a 95%
    success rate) it almost never fires; counted on the rarer outcome (the 5% failures) it is
    close to the exact test. ``outcome`` in the result says which one was counted.
    """
    _check_counts(control_events, control_trials, "control")
    _check_counts(treatment_events, treatment_trials, "treatment")
    total_trials = control_trials + treatment_trials
    total_events = control_events + treatment_events
    if total_trials and total_events * 2 > total_trials:
        result = d_squared_rule(treatment_trials - treatment_events,
                                control_trials - control_events, factor)
        outcome = "non-events"
    else:
        result = d_squared_rule(treatment_events, control_events, factor)
        outcome = "events"
    return SeedRuleResult(result.a, result.b, result.d, result.n, factor, result.significant,
                          outcome)


def sample_size_per_arm(base_rate: float, relative_change: float, alpha: float = 0.01,
                        power: float = 0.95) -> int:
    """Trials per arm (n₉₅ at the defaults) a one-sided two-proportion z-test at ``alpha`` needs
    to detect a rate moving from ``base_rate`` to ``base_rate·(1 − relative_change)`` with
    ``power``.

    A positive ``relative_change`` is a drop, a negative one a rise; the test is one-sided in
    that direction. Used for "requests still needed" and for the planned size of experiments.
    """
    _check_level(base_rate, "base_rate")
    _check_level(alpha, "alpha")
    _check_level(power, "power")
    other = base_rate * (1 - relative_change)
    if relative_change == 0 or not 0.0 < other < 1.0:
        raise UsageError(f"relative change {relative_change} from rate {base_rate} must give a "
                         "different rate strictly between 0 and 1")
    z_alpha, z_beta = float(norm.isf(alpha)), float(norm.isf(1 - power))
    mean = (base_rate + other) / 2
    numerator = (z_alpha * math.sqrt(2 * mean * (1 - mean))
                 + z_beta * math.sqrt(base_rate * (1 - base_rate) + other * (1 - other)))
    return math.ceil(numerator ** 2 / (base_rate - other) ** 2)


def detectable_relative_change(base_rate: float, trials_per_arm: float, alpha: float = 0.01,
                               power: float = 0.95) -> float:
    """Smallest relative drop in ``base_rate`` a one-sided test at ``alpha`` detects with
    ``power`` after ``trials_per_arm`` trials per arm (1.0 = only total breakage is visible).

    The inverse of :func:`sample_size_per_arm`, so a judge can say what it could see so far.
    """
    _check_level(base_rate, "base_rate")
    if trials_per_arm <= 0:
        return 1.0
    z_alpha, z_beta = float(norm.isf(alpha)), float(norm.isf(1 - power))

    def shortfall(r: float) -> float:
        other = base_rate * (1 - r)
        mean = (base_rate + other) / 2
        need = (z_alpha * math.sqrt(2 * mean * (1 - mean))
                + z_beta * math.sqrt(base_rate * (1 - base_rate) + other * (1 - other)))
        return base_rate * r * math.sqrt(trials_per_arm) - need

    if shortfall(1.0) < 0:
        return 1.0
    return float(optimize.brentq(shortfall, 1e-12, 1.0, xtol=1e-9))


@dataclass(frozen=True)
class BinomialRateResult:
    """Exact test of the canary's share of all events against its share of traffic."""

    baseline_events: int
    baseline_trials: int
    canary_events: int
    canary_trials: int
    expected_share: float
    alternative: str
    p_value: float

    def significant(self, alpha: float = 0.01) -> bool:
        return self.p_value < alpha

    def as_dict(self) -> dict:
        return asdict(self)


def binomial_rate_test(baseline_events: int, baseline_trials: int, canary_events: int,
                       canary_trials: int, alternative: str = "less") -> BinomialRateResult:
    """Is the canary's event rate significantly lower (``"less"``) or higher (``"greater"``)
    than the baseline's? Exact, so it decides on a handful of events.

    Given N events in total, under the null each one lands on the canary with probability
    n_canary / (n_canary + n_baseline), its share of the traffic; the canary's count is tested
    against that Binomial (scipy.stats.binomtest). This is the breakage fast path: with equal
    traffic, a canary at zero events while the baseline saw 7 gives p = ½⁷ < 1%.
    """
    _check_counts(baseline_events, baseline_trials, "baseline")
    _check_counts(canary_events, canary_trials, "canary")
    if alternative not in ("less", "greater", "two-sided"):
        raise UsageError(f"alternative must be less, greater or two-sided (got {alternative!r})")
    traffic = baseline_trials + canary_trials
    events = baseline_events + canary_events
    share = canary_trials / traffic if traffic else 0.5
    if events == 0 or share in (0.0, 1.0):
        p_value = 1.0
    else:
        p_value = float(binomtest(canary_events, events, share, alternative=alternative).pvalue)
    return BinomialRateResult(baseline_events, baseline_trials, canary_events, canary_trials,
                              share, alternative, p_value)
