"""Confidence intervals of one rate, for drawing a rate with its band (the deploy page)."""
from __future__ import annotations

import math

from greenlight.stats.distributions import binomtest, norm


def rate_interval(events: float, trials: float, level: float = 0.95,
                  model: str = "binomial") -> tuple[float, float] | None:
    """Two-sided interval of events/trials: Wilson's score interval for a share (it stays
    inside [0, 1] and is sound at 0 events), the normal approximation of a Poisson count for
    a rate that can exceed 1 (amounts per request). None without trials."""
    if trials <= 0:
        return None
    if model == "binomial" and 0 <= events <= trials:
        ci = binomtest(int(round(events)), int(round(trials))).proportion_ci(level, "wilson")
        return float(ci.low), float(ci.high)
    z = norm.isf((1 - level) / 2)
    spread = z * math.sqrt(max(events, 0.0))
    return max(0.0, (events - spread) / trials), (events + spread) / trials


def two_sided_z(level: float = 0.95) -> float:
    """The standard normal quantile of a two-sided interval at ``level`` (1.96 at 95%)."""
    return float(norm.isf((1 - level) / 2))
