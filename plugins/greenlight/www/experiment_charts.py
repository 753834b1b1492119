"""The experiment results page's pictures: per metric a forest plot of each branch's difference
to control with its always-valid and fixed-sample intervals, the cumulative difference over
time with its always-valid band, and the sample-ratio check drawn (expected against observed
share of users). The numbers are the engine's (``greenlight.experiments.timeline`` and the
results JSON); this module only turns them into ``greenlight.www.charts`` geometry.
"""
from __future__ import annotations

from flask import render_template

from greenlight.experiments.definition import CONTROL
from greenlight.experiments.store import ExperimentStore
from greenlight.experiments.timeline import READS, Read, always_valid_interval, reads_over_time
from greenlight.www import charts

# Reads of the past cost one report query each (seconds for 100,000 users): they are kept for
# a few minutes per experiment and ``since``; the newest read is always the page's own results.
HISTORY_SECONDS = 300
_history: dict[tuple, tuple[float, list[Read]]] = {}
WIDTH = 480  # SVG units: text stays legible when a phone scales the chart down

KINDS = {"rate": ("users with an event", "rate_difference", "rate_ci", "rate_significant",
                  charts.percent),
         "mean": ("value per user", "mean_difference", "mean_ci", "mean_significant",
                  charts.number)}


def _per_user_differs(metric: dict) -> bool:
    """A metric whose events carry values (revenue), not only counts of users."""
    return any(row["mean_per_user"] is not None and row["rate"] is not None
               and abs(row["mean_per_user"] - row["rate"]) > 1e-12
               for row in metric["branches"])


def forest_for(results: dict, metric: dict, kind: str, index: int) -> charts.Forest:
    label, difference, ci, significant, fmt = KINDS[kind]
    rows = []
    for row in metric["branches"]:
        c = row["vs_control"]
        if c is None or c[difference] is None:
            continue
        low, high = (v if v is not None else float("nan") for v in c[ci])
        rows.append((row["branch"], c[difference], (low, high),
                     always_valid_interval(results, metric, row, kind), bool(c[significant])))
    return charts.forest(f"forest-{index}-{kind}",
                         f"{metric['metric']}: {label}, difference to control", rows, fmt,
                         width=WIDTH)


def cumulative_for(reads: list[Read], metric_name: str, kind: str, index: int
                   ) -> charts.LineChart:
    label, difference, _, _, fmt = KINDS[kind]
    series: dict[str, charts.Series] = {}
    for read in reads:
        metric = next((m for m in read.results["metrics"] if m["metric"] == metric_name), None)
        if metric is None:
            continue
        for row in metric["branches"]:
            c = row["vs_control"]
            if row["branch"] == CONTROL or c is None or c[difference] is None:
                continue
            s = series.setdefault(row["branch"], charts.Series(
                row["branch"], [], "canary" if len(series) == 0 else "other"))
            s.points.append((read.at, c[difference]))
            interval = always_valid_interval(read.results, metric, row, kind)
            if interval:
                s.band.append((read.at, *interval))
    span = (reads[-1].at - reads[0].at) if len(reads) > 1 else 0
    x_format = (charts.clock_seconds if span < 3600 else charts.clock if span < 86400
                else charts.day_clock)
    drawn = list(series.values())
    if reads:
        drawn.append(charts.Series("no difference", [(reads[0].at, 0.0), (reads[-1].at, 0.0)],
                                   "llr", dashed=True))
    return charts.line_chart(
        f"cumulative-{index}-{kind}",
        f"{metric_name}: {label}, cumulative difference to control (always-valid band)",
        drawn, x_label="time (UTC)", x_format=x_format, y_format=fmt, width=WIDTH, height=200)


def shares_for(results: dict) -> charts.Shares:
    total = sum(results["exposed"].values())
    expected = results["srm"].get("expected") or {}
    weights = results["weights"]
    rows = []
    for branch, users in results["exposed"].items():
        wanted = float(expected.get(branch, weights.get(branch, 0.0) * total))
        rows.append((branch, wanted / total if total else weights.get(branch, 0.0),
                     users / total if total else 0.0, users, wanted))
    p = results["srm"]["p_value"]
    verdict = "MISMATCH" if results["srm"]["mismatch"] else "matches the weights"
    return charts.shares("srm", f"Sample ratio: expected vs observed split ({verdict}, "
                                f"p = {p:.2g})", rows, bool(results["srm"]["mismatch"]),
                         width=WIDTH)


def reads_with_history(store: ExperimentStore, name: str, results: dict) -> list[Read]:
    """Earlier reads (kept ``HISTORY_SECONDS``) and, last, ``results`` themselves."""
    since = results.get("since")
    key = (str(store.engine.url), name, None if since is None else int(since // 60))
    now = results["computed_at"]
    kept = _history.get(key)
    if kept is None or now - kept[0] > HISTORY_SECONDS:
        if len(_history) > 64:
            _history.pop(min(_history, key=lambda k: _history[k][0]))
        # the last of these reads is at ``now``, the page's own results (the cheap one: no
        # event after it to subtract)
        kept = (now, reads_over_time(store, name, READS, since, now=now))
        _history[key] = kept
    earlier = [r for r in kept[1] if r.at < results["computed_at"]]
    return earlier + [Read(results["computed_at"], results)]


def render(store: ExperimentStore, name: str, results: dict) -> str:
    """The charts block above the results table (over time from the results' ``since``)."""
    reads = reads_with_history(store, name, results)
    metrics = []
    for i, metric in enumerate(results["metrics"]):
        kinds = ["rate", "mean"] if _per_user_differs(metric) else ["rate"]
        metrics.append({"name": metric["metric"], "charts": [
            (forest_for(results, metric, kind, i), cumulative_for(reads, metric["metric"],
                                                                  kind, i))
            for kind in kinds]})
    return render_template("greenlight/experiment_charts.html", metrics=metrics,
                                  shares=shares_for(results), reads=len(reads))
