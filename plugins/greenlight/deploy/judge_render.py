"""The judge's verdict as plain text for the deploy log: one row per metric with both arms,
the evidence and what the traffic so far can and cannot show."""
from __future__ import annotations

from typing import TYPE_CHECKING

from greenlight.deploy.metric_spec import RATIO

if TYPE_CHECKING:
    from greenlight.deploy.judge import Forecast, Verdict


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
    reasons = [f"  {m.name}: {m.reason}" + _window_note(m) for m in verdict.metrics]
    return "\n".join([summary, *lines, *reasons]) + "\n"


def _window_note(m) -> str:
    """What the window still waits for, and what breakage detection needs, for one metric."""
    notes = []
    if m.status == "pending" and m.expected_s is not None and not m.seen_enough:
        notes.append(f"min_effect in view after ~{duration(m.expected_s)} at this traffic")
    if m.breakage_rate_needed is not None:
        notes.append(f"breakage caught within 15 s from {m.breakage_rate_needed:.0f} req/s "
                     "on the canary")
    return f" ({'; '.join(notes)})" if notes else ""


def duration(seconds: float) -> str:
    """``45 s``, ``9 min``, ``2.5 h``: a forecast's precision."""
    if seconds != seconds or seconds == float("inf"):
        return "never (no traffic)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_forecast(forecasts: list[Forecast], max_window_s: float) -> str:
    """Before the deploy: per ratio metric, how long its window will take at the traffic
    seen ("at 40 req/s per host, a 10% drop in registrations (p≈0.02) takes up to ~9 min to
    see"), and which ones the hard maximum will end undecided."""
    lines = []
    for f in forecasts:
        change = "drop" if f.direction == "lower-is-bad" else "rise"
        if f.base_rate <= 0:
            lines.append(f"{f.name}: no events on the baseline at {f.requests_per_s:.0f} "
                         "req/s per host; the test waits for them (or for its floor)")
            continue
        line = (f"at {f.requests_per_s:.0f} req/s per host, a {f.min_effect:.0%} {change} in "
                f"{f.name} (p≈{f.base_rate:.2g}) takes ~{duration(f.fixed_s)} to see (the "
                f"test ends by ~{duration(f.window_s)})")
        if f.window_s > max_window_s:
            line += (f"; the window ends at {duration(max_window_s)} and passes undecided "
                     "if no harm shows")
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")
