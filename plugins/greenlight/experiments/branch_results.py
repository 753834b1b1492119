"""Results of an experiment, per branch and metric, from the SQL aggregates (pure: numbers in,
a JSON-ready dict out). Conversion is compared with the two-proportion z-test, per-user values
(logins per user, revenue per user) with Welch's t-test; p-values are Holm-adjusted across all
comparisons shown; the seed's D² > N rule is shown beside the z-test for 50/50 splits. A
sample-ratio mismatch and results read before the planned sample size are flagged, and an
always-valid (mSPRT) p-value is given beside each fixed-sample one for reading early."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

from greenlight.experiments.definition import CONTROL, Experiment, explain
from greenlight.experiments.store import BranchMetricAggregate
from greenlight.stats import (
    holm_adjust,
    sample_ratio_mismatch,
    sample_size_per_arm,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
    welch_t_test,
)
from greenlight.stats.sequential import msprt_p_value

#: Smallest relative change the default plan is sized for (two-sided alpha, 80% power).
DEFAULT_MIN_EFFECT = 0.10
PLAN_POWER = 0.80


def compute_results(experiment: Experiment, exposed: dict[str, int],
                    aggregates: Sequence[BranchMetricAggregate],
                    metrics: Sequence[str] | None = None, *, alpha: float = 0.05,
                    confidence: float = 0.95, min_effect: float = DEFAULT_MIN_EFFECT,
                    since: float | None = None) -> dict:
    """The JSON contract of ``greenlight experiment results`` (see docs/experiments.md)."""
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

    by_key = {(a.branch, a.metric): a for a in aggregates}
    names = list(metrics) if metrics else sorted({a.metric for a in aggregates})
    metric_results = []
    p_slots: list[tuple[dict, str]] = []
    n_control = counts[CONTROL]
    for metric in names:
        rows = []
        control = by_key.get((CONTROL, metric))
        c_conv, c_sum, c_sq = _parts(control)
        c_mean, c_var = _mean_var(n_control, c_sum, c_sq)
        control_rate = c_conv / n_control if n_control else 0.0
        planned = experiment.planned_users or _planned(control_rate, min_effect, alpha)
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
                    # Always-valid (mSPRT) p-values: safe to read at any time, however often;
                    # the mixture is centred on changes of min_effect relative to control.
                    "rate_p_always_valid": _always_valid(
                        rate.difference, rate.control_variance / n_control
                        + rate.treatment_variance / n if n and n_control else 0.0,
                        min_effect * control_rate),
                    "mean_p_always_valid": _always_valid(
                        welch.difference, (c_var or 0.0) / n_control + (var or 0.0) / n
                        if n and n_control else 0.0, min_effect * c_mean),
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
                "trust only the always-valid p-value until then.")

    adjusted = holm_adjust([slot[0][f"{slot[1]}_p_value"] for slot in p_slots])
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
    if not 0.0 < control_rate < 1.0 or control_rate * (1 + min_effect) >= 1.0:
        return None
    return sample_size_per_arm(control_rate, -min_effect, alpha=alpha / 2, power=PLAN_POWER)


def _always_valid(estimate: float, variance: float, scale: float) -> float:
    return msprt_p_value(estimate, variance, scale * scale) if scale else 1.0


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None
