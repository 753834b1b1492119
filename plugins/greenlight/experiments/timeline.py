"""An experiment's results as they stood over time, and the always-valid interval of a
difference: what the results page draws next to the table.

"Over time" is a series of reads: at each moment t, the users first exposed before t and their
events before t (the store's ``bucket_report``), judged by ``compute_results`` exactly as a
read at t would have been. The always-valid interval is the set of differences the
normal-mixture SPRT would not reject at ``alpha`` (the inversion of ``msprt_p_value`` with the
mixture the results tune); unlike the fixed-sample interval it may be read at any time, so it
is the band an "over time" picture needs.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from greenlight.experiments.branch_results import (DEFAULT_MIN_EFFECT, compute_results,
                                                   family_alpha, mixture_variance,
                                                   rate_variances)
from greenlight.experiments.definition import CONTROL
from greenlight.experiments.store import ExperimentStore
from greenlight.stats.sequential import msprt_p_value

READS = 10


@dataclass(frozen=True)
class Read:
    """The results (the ``experiment results`` JSON) as they stood at ``at``."""
    at: float
    results: dict


def reads_over_time(store: ExperimentStore, name: str, reads: int = READS,
                    since: float | None = None, metrics: Sequence[str] | None = None,
                    now: float | None = None) -> list[Read]:
    """``reads`` evenly spaced reads from the first exposure (or ``since``) to ``now``; none
    before anyone was exposed."""
    span = store.exposure_span(name)
    if span is None:
        return []
    experiment = store.get(name)
    start = span[0] if since is None else max(since, span[0])
    end = max(span[1] + 1e-3, time.time() if now is None else now)
    if end <= start:
        return []
    out = []
    for i in range(1, reads + 1):
        at = start + (end - start) * i / reads
        rows = store.bucket_report(name, None, start, at, metrics)
        out.append(Read(at, compute_results(experiment, rows.counts, rows.aggregates, metrics,
                                             since=since)))
    return out


def always_valid_interval(results: dict, metric: dict, row: dict, kind: str = "rate",
                          min_effect: float = DEFAULT_MIN_EFFECT
                          ) -> tuple[float, float] | None:
    """The always-valid interval of ``row``'s difference to control (``kind`` "rate" or
    "mean") in ``metric`` of ``results``; None when the variance is not known yet.

    The variances and the mixture are the results' own (:mod:`branch_results`: tuned to the
    planned size when there is one, else centred on the planned effect, ``min_effect`` of the
    control's value), so the interval excludes 0 exactly when that read's always-valid
    p-value is below ``alpha``."""
    comparison = row.get("vs_control")
    control = next((r for r in metric["branches"] if r["branch"] == CONTROL), None)
    if comparison is None or control is None or not row["exposed"] or not control["exposed"]:
        return None
    n_t, n_c = row["exposed"], control["exposed"]
    if kind == "rate":
        p_t, p_c = row["rate"] or 0.0, control["rate"] or 0.0
        variance, unit, base = rate_variances(control["converting"], n_c, row["converting"],
                                              n_t, p_c * (1 - p_c), p_t * (1 - p_t))
        estimate = comparison["rate_difference"]
    else:
        var_t, var_c = row["variance_per_user"], control["variance_per_user"]
        if var_t is None or var_c is None:
            return None
        estimate, base = comparison["mean_difference"], control["mean_per_user"] or 0.0
        variance, unit = var_c / n_c + var_t / n_t, var_c + var_t
    alpha = results["alpha"]
    if variance <= 0 or estimate is None or not base:
        return None
    tau2 = mixture_variance(unit, min_effect * base, metric.get("planned_users_per_branch"),
                            family_alpha(alpha, len(results["metrics"]),
                                         len(results["exposed"])))
    if tau2 <= 0:
        return None
    half = _rejection_distance(variance, tau2, alpha)
    return (estimate - half, estimate + half)


def _rejection_distance(variance: float, tau2: float, alpha: float) -> float:
    """The smallest |difference| whose mSPRT p-value is below ``alpha`` (bisection: the
    p-value falls as the difference grows)."""
    low, high = 0.0, math.sqrt(variance)
    while msprt_p_value(high, variance, tau2) >= alpha:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        if msprt_p_value(middle, variance, tau2) >= alpha:
            low = middle
        else:
            high = middle
    return high
