"""Results of an experiment, per branch and metric, from the SQL aggregates (pure: numbers in,
a JSON-ready dict out).

Teams read results every day, so "significant" is decided on the always-valid p-value of the
normal-mixture SPRT (mSPRT, Johari, Pekelis & Walsh), kept as the running minimum over the
reads (pass the previous read's results as ``previous``), Holm-adjusted across all comparisons
shown: an A/A experiment read any number of times is flagged at most ``alpha`` of the time. A
fixed-sample p-value re-read daily is not: 40 reads flagged about one A/A experiment in five.
The mixture is tuned to the planned effect at the planned size, and the planned size is the
always-valid test's (80% power at ``min_effect`` at the first Holm step, alpha over the number
of comparisons). The fixed-sample tests (two-proportion
z-test for conversion, Welch's t-test per user) are given for the planned size only
(``*_p_at_planned_size``); IMVU's D² > N rule is shown for 50/50 splits; a sample-ratio
mismatch and reads before the planned size are flagged."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

from greenlight.experiments.definition import CONTROL, Experiment, explain
from greenlight.experiments.store import BranchMetricAggregate
from greenlight.stats import (
    holm_adjust,
    sample_ratio_mismatch,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
    welch_t_test,
)
from greenlight.stats.sequential import (
    msprt_mixture_variance,
    msprt_p_value,
    msprt_sample_size,
)

#: Smallest relative change the default plan is sized for (always-valid at alpha, 80% power).
DEFAULT_MIN_EFFECT = 0.10
PLAN_POWER = 0.80


def compute_results(experiment: Experiment, exposed: dict[str, int],
                    aggregates: Sequence[BranchMetricAggregate],
                    metrics: Sequence[str] | None = None, *, alpha: float = 0.05,
                    confidence: float = 0.95, min_effect: float = DEFAULT_MIN_EFFECT,
                    since: float | None = None, previous: dict | None = None) -> dict:
    """The JSON contract of ``greenlight experiment results`` (see docs/experiments.md).

    ``previous``: the results of the previous read of the same experiment (same ``since``),
    whose always-valid p-values this read's cannot exceed (running minimum)."""
    branches = experiment.all_branches()
    weights = experiment.weights()
    for extra in sorted(set(exposed) - set(branches)):  # exposures of a removed branch
        branches.append(extra)
        weights[extra] = 0.0
    counts = {b: int(exposed.get(b, 0)) for b in branches}
    warnings: list[str] = []

    srm = sample_ratio_mismatch(counts, weights)
    if srm.mismatch:
        warnings.append(
            "Sample ratio mismatch: exposures " + ", ".join(f"{b} {counts[b]}" for b in branches)
            + f" do not match the weights (chi-squared p = {srm.p_value:.2g}). Assignment or "
            "exposure logging is broken; do not trust these results.")

    earlier = _always_valid_so_far(previous)
    by_key = {(a.branch, a.metric): a for a in aggregates}
    names = list(metrics) if metrics else sorted({a.metric for a in aggregates})
    # Holm shares alpha over every comparison shown (rate and per-user mean of each metric
    # and branch): the plan and the mixture are sized for the first Holm step, alpha / that
    family = family_alpha(alpha, len(names), len(branches))
    metric_results = []
    p_slots: list[tuple[dict, str]] = []
    n_control = counts[CONTROL]
    for metric in names:
        rows = []
        control = by_key.get((CONTROL, metric))
        c_conv, c_sum, c_sq = _parts(control)
        c_mean, c_var = _mean_var(n_control, c_sum, c_sq)
        control_rate = c_conv / n_control if n_control else 0.0
        planned = experiment.planned_users or _planned(control_rate, min_effect, family)
        at_planned = planned is not None and min(counts.values() or [0]) >= planned
        for branch in branches:
            agg = by_key.get((branch, metric))
            n = counts[branch]
            conv, total, squares = _parts(agg)
            mean, var = _mean_var(n, total, squares)
            row = {"branch": branch, "exposed": n, "converting": conv,
                   "events": agg.events if agg else 0,
                   "rate": conv / n if n else None, "mean_per_user": mean if n else None,
                   "variance_per_user": var, "vs_control": None}
            if branch != CONTROL:
                rate = two_proportion_test(c_conv, n_control, conv, n, confidence)
                welch = welch_t_test(n_control, c_mean, c_var if c_var is not None else 0.0,
                                     n, mean, var if var is not None else 0.0, confidence)
                comparison = {
                    "rate_difference": rate.difference,
                    "rate_relative": _finite(rate.relative_difference),
                    "rate_ci": [_finite(rate.ci_low), _finite(rate.ci_high)],
                    "rate_p_value": rate.p_two_sided,
                    "mean_difference": welch.difference,
                    "mean_relative": _finite(welch.relative_difference),
                    "mean_ci": [_finite(welch.ci_low), _finite(welch.ci_high)],
                    "mean_p_value": _finite(welch.p_two_sided),
                    "seed_rule": None,
                    # Always-valid (mSPRT) p-values, the running minimum over reads: what
                    # "significant" is decided on, safe to read at any time, however often.
                    "rate_p_always_valid": min(earlier.get((metric, branch, "rate"), 1.0),
                                               _rate_always_valid(
                        rate, c_conv, n_control, conv, n, min_effect, planned, family)),
                    "mean_p_always_valid": min(earlier.get((metric, branch, "mean"), 1.0),
                                               _always_valid(
                        welch.difference, (c_var or 0.0) / n_control + (var or 0.0) / n
                        if n and n_control else 0.0, (c_var or 0.0) + (var or 0.0),
                        min_effect * c_mean, planned, family)),
                    # The fixed-sample tests hold only when read once, at the planned size.
                    "rate_p_at_planned_size": rate.p_two_sided if at_planned else None,
                    "mean_p_at_planned_size": _finite(welch.p_two_sided) if at_planned else None,
                }
                if math.isclose(weights[branch], weights[CONTROL]) and n and n_control:
                    rule = seed_rule_on_rarer_outcome(c_conv, n_control, conv, n)
                    comparison["seed_rule"] = {"a": rule.a, "b": rule.b, "d": rule.d,
                                               "n": rule.n, "counted": rule.outcome,
                                               "significant": rule.significant}
                p_slots.append((comparison, "rate"))
                if comparison["mean_p_value"] is not None:
                    p_slots.append((comparison, "mean"))
                row["vs_control"] = comparison
            rows.append(row)
        read_early = planned is not None and min(counts.values() or [0]) < planned
        metric_results.append({"metric": metric, "planned_users_per_branch": planned,
                               "read_early": read_early, "branches": rows})
        if read_early:
            smallest = min(counts.values()) if counts else 0
            warnings.append(
                f"{metric}: read early, {smallest:,} of {planned:,} planned users in the "
                "smallest branch. Checking before the planned size inflates false positives; "
                "significance is decided on the always-valid p-value, the fixed-sample "
                "p-value is shown from the planned size on.")

    adjusted = holm_adjust([slot[0][f"{slot[1]}_p_always_valid"] for slot in p_slots])
    for (comparison, kind), p_adj in zip(p_slots, adjusted):
        comparison[f"{kind}_p_adjusted"] = p_adj
        comparison[f"{kind}_significant"] = p_adj < alpha
    for metric in metric_results:
        for row in metric["branches"]:
            comparison = row["vs_control"]
            if comparison is not None:
                comparison.setdefault("mean_p_adjusted", None)
                comparison.setdefault("mean_significant", False)

    return {
        "experiment": experiment.name,
        "status": experiment.status,
        "status_label": experiment.status_label(),
        "explanation": explain(experiment),
        "weights": weights,
        "exposed": counts,
        "since": since,
        "computed_at": time.time(),
        "alpha": alpha,
        "significance": "always-valid p (running minimum over reads), Holm-adjusted",
        "confidence": confidence,
        "comparisons": len(p_slots),
        "srm": {"chi2": _finite(srm.chi2), "p_value": srm.p_value, "mismatch": srm.mismatch,
                "expected": srm.expected},
        "metrics": metric_results,
        "warnings": warnings,
    }


def _parts(agg: BranchMetricAggregate | None) -> tuple[int, float, float]:
    return (agg.converting, agg.total, agg.total_squares) if agg else (0, 0.0, 0.0)


def _mean_var(n: int, total: float, squares: float) -> tuple[float, float | None]:
    """Mean and sample variance over all n exposed users (users without events count 0)."""
    if n == 0:
        return 0.0, None
    mean = total / n
    if n < 2:
        return mean, None
    return mean, max(0.0, (squares - total * total / n) / (n - 1))


def _planned(control_rate: float, min_effect: float, alpha: float) -> int | None:
    """Users per branch for the always-valid test to see ``min_effect`` (relative to the
    control's rate) with 80% power."""
    if not 0.0 < control_rate < 1.0 or control_rate * (1 + min_effect) >= 1.0:
        return None
    treated = control_rate * (1 + min_effect)
    unit = control_rate * (1 - control_rate) + treated * (1 - treated)
    return msprt_sample_size(control_rate * min_effect, unit, alpha, PLAN_POWER)


def _rate_always_valid(rate, c_conv: int, n_control: int, conv: int, n: int,
                       min_effect: float, planned: int | None, alpha: float) -> float:
    """The always-valid p of a rate difference. Each arm's own variance is the estimate's;
    where an arm sits at 0% or 100% (its variance 0) or control converts nobody (no relative
    effect to scale), the pooled rate stands in, as under the null, so 30/30 against 0/30 is
    strong evidence instead of none."""
    if not (n and n_control):
        return 1.0
    variance, unit, base = rate_variances(c_conv, n_control, conv, n, rate.control_variance,
                                          rate.treatment_variance)
    return _always_valid(rate.difference, variance, unit, min_effect * base, planned, alpha)


def family_alpha(alpha: float, metrics: int, branches: int) -> float:
    """Holm's first step: ``alpha`` over every comparison shown (rate and per-user mean of
    each metric and treated branch); the plan and the mixture are sized for it."""
    return alpha / max(1, 2 * metrics * (branches - 1))


def rate_variances(c_conv: int, n_control: int, conv: int, n: int, control_variance: float,
                   treatment_variance: float) -> tuple[float, float, float]:
    """(variance of the rate difference, its unit variance, the base rate the effect scales)
    for the always-valid test of a rate: each arm's own variance, or the pooled rate's where
    an arm sits at 0% or 100% or control converts nobody."""
    variance = control_variance / n_control + treatment_variance / n
    unit = control_variance + treatment_variance
    base = c_conv / n_control
    if control_variance <= 0 or treatment_variance <= 0 or base <= 0:
        pooled = (c_conv + conv) / (n_control + n)
        variance = pooled * (1 - pooled) * (1 / n_control + 1 / n)
        unit = 2 * pooled * (1 - pooled)
        base = max(base, pooled)
    return variance, unit, base


def mixture_variance(unit_variance: float, effect: float, planned: int | None,
                     alpha: float) -> float:
    """The mSPRT mixture's τ²: most powerful at the planned size (``unit_variance``/planned
    is the estimate's variance there); without a plan, centred on the planned effect."""
    if planned and unit_variance > 0:
        return msprt_mixture_variance(unit_variance / planned, alpha)
    return effect * effect


def _always_valid(estimate: float, variance: float, unit_variance: float, effect: float,
                  planned: int | None, alpha: float) -> float:
    """The mSPRT p-value with the mixture of :func:`mixture_variance`."""
    if not effect or variance <= 0:
        return 1.0
    return msprt_p_value(estimate, variance,
                         mixture_variance(unit_variance, effect, planned, alpha))


def _always_valid_so_far(previous: dict | None) -> dict[tuple[str, str, str], float]:
    """(metric, branch, kind) → the always-valid p-value of the previous read."""
    found: dict[tuple[str, str, str], float] = {}
    for metric in (previous or {}).get("metrics", []):
        for row in metric.get("branches", []):
            comparison = row.get("vs_control") or {}
            for kind in ("rate", "mean"):
                value = comparison.get(f"{kind}_p_always_valid")
                if isinstance(value, (int, float)):
                    found[(metric["metric"], row["branch"], kind)] = float(value)
    return found


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None
