"""Deploys page: the ledger's deploys, newest first, and one page per deploy that answers in
five seconds what an on-call engineer asks — did it pass, which metric decided, by how much,
how sure — with a chart per judged metric, the hosts' timeline and a failed host's log.

Read-only (deploys and rollbacks start from the ``deploy`` and ``rollback`` builders, role
``deployers``). What a deploy means comes from ``greenlight.deploy.story``; this module only
turns it into charts (``greenlight.www.charts``) and templates.
"""
from __future__ import annotations

import functools
import json

from flask import Blueprint, abort, g, render_template

from greenlight.deploy import releases, story
from greenlight.deploy.hosts import DeploySettings
from greenlight.errors import GreenlightError
from greenlight.www import charts, dashboard

blueprint = Blueprint("deploys", __name__, template_folder="templates")
OUTCOME_CLASS = {"success": "ok", "rolled_back": "bad", "failed": "bad", "aborted": "bad",
                 "interrupted": "warn", "running": "warn", "superseded": "", "noop": ""}


@functools.lru_cache(maxsize=4)
def _ledger_for(url: str):
    from greenlight.deploy.ledger import Ledger

    return Ledger(url)


@functools.lru_cache(maxsize=4)
def _deploy_settings(settings) -> DeploySettings:
    return DeploySettings.from_section(settings)


def ledger():
    """The deploy ledger of the settings the pages run with (also the trending page's)."""
    return _ledger_for(_deploy_settings(g.settings).ledger_url)


def deploy_href(deploy_id: int) -> str:
    return f"{dashboard.MOUNT}/deploys/{deploy_id}"


@blueprint.route("/")
def index() -> str:
    try:
        records = ledger().list_deploys(limit=100)
        bad = ledger().bad_releases()
    except GreenlightError as exc:
        abort(503, f"deploy ledger unavailable ([deploy] ledger_url): {exc}")
    rows = [{"record": r, "css": OUTCOME_CLASS.get(r.outcome, ""), "bad": r.sha in bad,
             "href": deploy_href(r.id), "shipped": story.shipped(r),
             "sentence": story.verdict_sentence(r)} for r in records]
    body = render_template("greenlight/deploys.html", rows=rows,
                           trending=f"{dashboard.MOUNT}/trending/")
    return dashboard.layout("Deploys", body)


def metric_charts(track: story.MetricTrack, index: int) -> dict:
    """Two charts per metric: canary vs baseline (with bands), the statistic between its
    lines; plus the last look's numbers."""
    ratio = track.kind != "latency"
    fmt = charts.percent if ratio and all(
        (look.baseline or 0) <= 1 for look in track.looks) else charts.number
    canary = charts.Series("canary", [(k.elapsed_s, k.canary) for k in track.looks
                                      if k.canary is not None], "canary",
                           [(k.elapsed_s, *k.canary_interval) for k in track.looks
                            if k.canary_interval])
    baseline = charts.Series("baseline", [(k.elapsed_s, k.baseline) for k in track.looks
                                          if k.baseline is not None], "baseline",
                             [(k.elapsed_s, *k.baseline_interval) for k in track.looks
                              if k.baseline_interval])
    unit = "median latency (s, bucket bound)" if not ratio else "rate, 95% interval"
    values = charts.line_chart(
        f"metric-{index}-values", f"{track.name}: canary vs baseline ({unit})",
        [canary, baseline], x_label="seconds into the window", y_format=fmt,
        x_format=charts.seconds, y_floor=0.0)
    statistic = charts.line_chart(
        f"metric-{index}-llr", f"{track.name}: sequential statistic (LLR) between its lines",
        [charts.Series("LLR", [(k.elapsed_s, k.llr) for k in track.looks], "llr"),
         charts.Series("fail line", [(k.elapsed_s, k.fail_line) for k in track.looks],
                       "fail", dashed=True),
         charts.Series("pass line", [(k.elapsed_s, k.pass_line) for k in track.looks],
                       "pass", dashed=True)],
        x_label="seconds into the window", x_format=charts.seconds, height=180)
    last = track.looks[-1] if track.looks else None
    detectable = last.detectable if last else None
    return {"track": track, "rates": values, "statistic": statistic,
            "detectable": (None if detectable is None else
                           charts.percent(detectable) if ratio else f"{detectable:.3f}"),
            "min_effect": charts.percent(track.min_effect) if ratio else f"{track.min_effect:g}",
            "extra": track.extra}


def host_gantt(record) -> charts.Gantt | None:
    spans = story.host_spans(record)
    if not spans:
        return None
    end = record.finished_at or record.events[-1].at
    total = (end - record.started_at).total_seconds()
    down = {(d["host"], d["phase"]) for d in story.hosts_found_down(record)}
    rows = [(f"{s.host} {s.phase}", s.parts,
             "(was down)" if (s.host, s.phase) in down else "") for s in spans]
    return charts.gantt("hosts", "Host by host: switch, restart, health, up", rows, total)


@blueprint.route("/<int:deploy_id>")
def show(deploy_id: int) -> str:
    try:
        record = ledger().deploy(deploy_id)
    except GreenlightError:
        abort(404, f"no deploy #{deploy_id}")
    subjects = releases.commit_subjects(_deploy_settings(g.settings).repo, record.commits)
    tracks = story.metric_tracks(record)
    raw_judge = [e.data for e in record.events if e.phase == "judge"]
    events = [{"event": e, "summary": e.data.get("summary") or e.data.get("status")
               or e.data.get("outcome") or ""} for e in record.events]
    body = render_template(
        "greenlight/deploy.html", record=record, css=OUTCOME_CLASS.get(record.outcome, ""),
        sentence=story.verdict_sentence(record), shipped=story.shipped(record),
        commits=[(sha, subjects.get(sha, "")) for sha in record.commits],
        failure=story.start_failure(record), down=story.hosts_found_down(record),
        interrupted=(story.progress(record).interrupted(record.kind)
                     if record.outcome in ("running", "interrupted") else None),
        metrics=[metric_charts(t, i) for i, t in enumerate(tracks)],
        gantt=host_gantt(record), events=events,
        raw_judge=json.dumps(raw_judge, indent=1, default=str) if raw_judge else "",
        back=f"{dashboard.MOUNT}/deploys/", trending=f"{dashboard.MOUNT}/trending/")
    return dashboard.layout(f"Deploy #{record.id}", body)
