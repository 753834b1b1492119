"""An experiment report over a date range, per bucket and branch (pure: SQL rows in, a JSON-ready
dict out): user counts, each attribute's distribution with a balance test, each metric's rate
and mean per user with intervals, and the significance of every difference against control
with the false discovery rate controlled across all buckets × metrics (Benjamini–Hochberg).

Per-user means (revenue per user) are compared with Welch's t-test on the per-user totals: the
variance is that of what each user spent, not of single purchases, so heavy spenders widen the
interval as they should. Rates are users with at least one event over users in the bucket.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from greenlight.errors import UsageError
from greenlight.experiments.buckets import ALL_USERS, Bucket
from greenlight.experiments.definition import CONTROL, Experiment
from greenlight.experiments.store import BranchMetricAggregate, BucketRows
from greenlight.stats.balance import attribute_balance, benjamini_hochberg
from greenlight.stats.intervals import two_sided_z
from greenlight.stats.means import welch_t_test
from greenlight.stats.proportions import two_proportion_test
from greenlight.stats.sequential import msprt_p_value
from greenlight.stats.srm import sample_ratio_mismatch

NOT_RECORDED = "(not recorded)"
DEFAULT_MIN_EFFECT = 0.10


def parse_day(text: str, *, end: bool = False) -> float:
    """``--from``/``--to``: a date (``2024-05-01``: its start, or for ``--to`` the end of that
    day, so the range includes it) or an ISO time; UTC unless the text says otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{'--to' if end else '--from'} {text!r}: expected a date like "
                         "2024-05-01 or a time like 2024-05-01T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end and len(text.strip()) == 10:  # a bare date: through the end of that day
        moment += timedelta(days=1)
    return moment.timestamp()


def build_report(experiment: Experiment, buckets: Sequence[tuple[Bucket | None, BucketRows]],
                 start: float, end: float, *, alpha: float = 0.05, confidence: float = 0.95,
                 min_effect: float = DEFAULT_MIN_EFFECT) -> dict:
    """The JSON contract of ``greenlight experiment report`` (see docs/experiments.md)."""
    if not start < end:
        raise UsageError("the report's --from must be before its --to")
    branches = experiment.all_branches()
    for _, rows in buckets:
        branches += [b for b in rows.counts if b not in branches]
    z = two_sided_z(confidence)
    warnings: list[str] = []
    slots: list[tuple[dict, str]] = []
    out_buckets = []
    for bucket, rows in buckets:
        name = bucket.name if bucket else ALL_USERS
        counts = {b: int(rows.counts.get(b, 0)) for b in branches}
        entry = {"name": name,
                 "description": bucket.describe() if bucket else "every user first exposed "
                                                                 "in the range",
                 "users": counts,
                 "attributes": _attributes(experiment, rows, counts, alpha, name, warnings),
                 "metrics": _metrics(rows.aggregates, counts, branches, z, confidence,
                                     min_effect, slots)}
        if bucket is None:
            weights = experiment.weights()
            srm = sample_ratio_mismatch({b: counts[b] for b in weights},
                                        weights) if sum(counts.values()) else None
            if srm is not None and srm.mismatch:
                warnings.append(f"Sample ratio mismatch in bucket {name}: users "
                                + ", ".join(f"{b} {counts[b]:,}" for b in weights)
                                + f" do not match the weights (p = {srm.p_value:.2g}); "
                                "assignment or exposure logging is broken.")
        out_buckets.append(entry)
    adjusted = benjamini_hochberg([c[f"{kind}_p_value"] for c, kind in slots])
    for (comparison, kind), q in zip(slots, adjusted):
        comparison[f"{kind}_q_value"] = q
        comparison[f"{kind}_significant"] = q is not None and q < alpha
    return {
        "experiment": experiment.name,
        "status_label": experiment.status_label(),
        "from": start, "to": end,
        "branches": branches,
        "alpha": alpha, "confidence": confidence,
        "comparisons": len(slots),
        "multiple_comparisons": (f"Benjamini-Hochberg over {len(slots)} comparisons "
                                 "(buckets x metrics x rate/mean): a difference is called "
                                 f"significant when its q-value < {alpha:g}, so about "
                                 f"{alpha:.0%} of those called significant may be chance."),
        "buckets": out_buckets,
        "warnings": warnings,
    }


def _attributes(experiment: Experiment, rows: BucketRows, counts: dict[str, int],
                alpha: float, bucket: str, warnings: list[str]) -> list[dict]:
    names = list(experiment.attributes) + sorted(set(rows.attributes) - set(experiment.attributes))
    out = []
    for attribute in names:
        per_branch = rows.attributes.get(attribute, {})
        table: dict[str, dict[str, int]] = {}
        for branch, users in counts.items():
            values = dict(per_branch.get(branch, {}))
            missing = users - sum(values.values())
            if missing > 0:
                values[NOT_RECORDED] = missing
            table[branch] = values
        balance = attribute_balance(table)
        value_names = sorted({v for values in table.values() for v in values},
                             key=lambda v: (v == NOT_RECORDED, v))
        out.append({
            "name": attribute,
            "values": [{"value": value, "branches": {
                b: {"users": table[b].get(value, 0),
                    "share": table[b].get(value, 0) / counts[b] if counts[b] else None}
                for b in counts}} for value in value_names],
            "balance": {"chi2": balance.chi2, "df": balance.df, "p_value": balance.p_value,
                        "imbalanced": balance.imbalanced(alpha)}})
        if balance.imbalanced(alpha):
            warnings.append(f"Bucket {bucket}: {attribute} is distributed differently across "
                            f"branches (chi-square p = {balance.p_value:.2g}); check "
                            "assignment and attribute logging before trusting differences.")
    return out


def _metrics(aggregates: list[BranchMetricAggregate], counts: dict[str, int],
             branches: list[str], z: float, confidence: float, min_effect: float,
             slots: list) -> list[dict]:
    by_key = {(a.branch, a.metric): a for a in aggregates}
    out = []
    for metric in sorted({a.metric for a in aggregates}):
        n_c = counts.get(CONTROL, 0)
        c_conv, c_mean, c_var = _summary(by_key.get((CONTROL, metric)), n_c)
        rows = []
        for branch in branches:
            n = counts[branch]
            conv, mean, var = _summary(by_key.get((branch, metric)), n)
            rate = conv / n if n else None
            row = {"branch": branch, "users": n, "converting": conv, "rate": rate,
                   "rate_ci": _interval(rate, rate * (1 - rate) / n if n else None, z),
                   "mean_per_user": mean if n else None,
                   "mean_ci": _interval(mean if n else None, var / n if n and var is not None
                                        else None, z),
                   "vs_control": None}
            if branch != CONTROL and n and n_c:
                p_test = two_proportion_test(c_conv, n_c, conv, n, confidence)
                welch = welch_t_test(n_c, c_mean, c_var or 0.0, n, mean, var or 0.0, confidence)
                c_rate = c_conv / n_c
                comparison = {
                    "rate_difference": p_test.difference,
                    "rate_ci": [_finite(p_test.ci_low), _finite(p_test.ci_high)],
                    "rate_p_value": _finite(p_test.p_two_sided),
                    "rate_p_always_valid": _always_valid(
                        p_test.difference, p_test.control_variance / n_c
                        + p_test.treatment_variance / n, min_effect * c_rate),
                    "mean_difference": welch.difference,
                    "mean_ci": [_finite(welch.ci_low), _finite(welch.ci_high)],
                    "mean_p_value": _finite(welch.p_two_sided),
                    "mean_p_always_valid": _always_valid(
                        welch.difference, (c_var or 0.0) / n_c + (var or 0.0) / n,
                        min_effect * c_mean),
                }
                for kind in ("rate", "mean"):
                    comparison[f"{kind}_q_value"] = None
                    comparison[f"{kind}_significant"] = False
                    if comparison[f"{kind}_p_value"] is not None:
                        slots.append((comparison, kind))
                row["vs_control"] = comparison
            rows.append(row)
        out.append({"metric": metric, "branches": rows})
    return out


def _summary(agg: BranchMetricAggregate | None, n: int) -> tuple[int, float, float | None]:
    """Converting users, mean and sample variance of per-user totals over all n users of the
    branch (users without events count 0)."""
    if agg is None or n == 0:
        return 0, 0.0, (0.0 if n >= 2 else None)
    mean = agg.total / n
    var = max(0.0, (agg.total_squares - agg.total * agg.total / n) / (n - 1)) if n >= 2 \
        else None
    return agg.converting, mean, var


def _interval(value: float | None, variance: float | None, z: float) -> list | None:
    if value is None or variance is None:
        return None
    half = z * math.sqrt(max(variance, 0.0))
    return [value - half, value + half]


def _always_valid(estimate: float, variance: float, scale: float) -> float:
    return msprt_p_value(estimate, variance, scale * scale) if scale and variance > 0 else 1.0


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
