"""Welch's t-test from summary statistics: compares per-user means (revenue per user, purchases
per user) without assuming equal variances, and without needing the raw rows — the experiment
results compute n, mean and variance in SQL."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from greenlight.stats.distributions import student_t

from greenlight.errors import UsageError

__all__ = ["WelchResult", "welch_t_test"]


@dataclass(frozen=True)
class WelchResult:
    """Difference of means (treatment − control) with its confidence interval and p-values.
    Undefined quantities (an arm with fewer than 2 observations) are NaN."""

    control_n: int
    control_mean: float
    control_variance: float
    treatment_n: int
    treatment_mean: float
    treatment_variance: float
    difference: float
    relative_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    t: float
    df: float
    p_two_sided: float
    p_greater: float
    p_less: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_two_sided < alpha

    def as_dict(self) -> dict:
        return asdict(self)


def welch_t_test(control_n: int, control_mean: float, control_variance: float,
                 treatment_n: int, treatment_mean: float, treatment_variance: float,
                 confidence: float = 0.95) -> WelchResult:
    """Welch's unequal-variance t-test on (n, mean, sample variance) of each arm.

    Degrees of freedom by Welch–Satterthwaite. With both variances zero the difference is
    certain: p = 0 if the means differ, 1 if not.
    """
    if control_n < 0 or treatment_n < 0:
        raise UsageError(f"sample sizes must be >= 0 (got {control_n} and {treatment_n})")
    if control_variance < 0 or treatment_variance < 0:
        raise UsageError("variances must be >= 0 "
                         f"(got {control_variance} and {treatment_variance})")
    if not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be strictly between 0 and 1 (got {confidence})")
    diff = treatment_mean - control_mean
    relative = diff / control_mean if control_mean else (0.0 if diff == 0 else math.inf)
    nan = math.nan
    if control_n < 2 or treatment_n < 2:
        return WelchResult(control_n, control_mean, control_variance, treatment_n,
                           treatment_mean, treatment_variance, diff, relative, nan, nan,
                           confidence, nan, nan, nan, nan, nan)
    a, b = control_variance / control_n, treatment_variance / treatment_n
    se = math.sqrt(a + b)
    if se == 0.0:
        p = 1.0 if diff == 0 else 0.0
        return WelchResult(control_n, control_mean, control_variance, treatment_n,
                           treatment_mean, treatment_variance, diff, relative, diff, diff,
                           confidence, 0.0 if diff == 0 else math.copysign(math.inf, diff),
                           float(control_n + treatment_n - 2), p,
                           1.0 if diff <= 0 else 0.0, 1.0 if diff >= 0 else 0.0)
    df = (a + b) ** 2 / (a * a / (control_n - 1) + b * b / (treatment_n - 1))
    t_value = diff / se
    half = float(student_t.isf((1 - confidence) / 2, df)) * se
    return WelchResult(control_n, control_mean, control_variance, treatment_n, treatment_mean,
                       treatment_variance, diff, relative, diff - half, diff + half, confidence,
                       t_value, df, float(min(1.0, 2 * student_t.sf(abs(t_value), df))),
                       float(student_t.sf(t_value, df)), float(student_t.cdf(t_value, df)))
