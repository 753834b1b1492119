"""The judge's verdict as plain text for the deploy log: one row per metric with both arms,
the evidence and what the traffic so far can and cannot show."""
from __future__ import annotations

from typing import TYPE_CHECKING

from greenlight.deploy.metric_spec import RATIO

if TYPE_CHECKING:
    from greenlight.deploy.judge import Verdict


def _fmt(value: float | None, pattern: str = "{:.4g}") -> str:
    return "-" if value is None else pattern.format(value)


def render_table(verdict: Verdict) -> str:
    """A plain-text table of the verdict for the deploy log: per metric the status, both
    arms, the evidence and what the traffic so far can and cannot show."""
    head = ("metric", "status", "canary", "baseline", "change", "LLR [pass, fail]",
            "Holm p", "fixed z p", "D²>N / exact", "detectable", "requests needed")
    rows = [head]
    for m in verdict.metrics:
        if m.kind == RATIO:
            canary = f"{m.canary_events:g}/{m.canary_trials:g}"
            baseline = f"{m.baseline_events:g}/{m.baseline_trials:g}"
            change = _fmt(m.relative_change, "{:+.1%}")
            detectable = _fmt(m.detectable, "{:.1%}")
        else:
            canary = f"median<={_fmt(m.canary_value)}s n={m.canary_trials:g}"
            baseline = f"median<={_fmt(m.baseline_value)}s n={m.baseline_trials:g}"
            change = _fmt(m.relative_change, "P(slower)-½={:+.3f}")
            if m.relative_change is not None:
                change += f" ({m.intervals} intervals, variance x{m.variance_factor:.3g})"
            detectable = _fmt(m.detectable, "{:.3f}")
        rows.append((m.name, m.status, canary, baseline, change,
                     f"{m.llr:.2f} [{m.lower:.2f}, {m.upper:.2f}]", f"{m.adjusted_p:.3g}",
                     _fmt(m.fixed_z_p, "{:.3g}"), m.seed_rule or "-", detectable,
                     _fmt(m.requests_needed, "{:.0f}")))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    summary = (f"verdict: {verdict.outcome.upper()} after {verdict.elapsed_s:.1f} s of "
               f"{verdict.max_window_s:g} s — {verdict.reason} (alpha {verdict.alpha:g} over "
               f"{len(verdict.metrics)} metric(s))")
    reasons = [f"  {m.name}: {m.reason}" for m in verdict.metrics]
    return "\n".join([summary, *lines, *reasons]) + "\n"
