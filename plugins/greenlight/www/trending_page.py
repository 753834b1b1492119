"""Trending page: business and system metrics over the last hour, day or week, every deploy
a vertical marker linking to its page (rollbacks, failed deploys and incidents in their own
colour), hovering shows the commits' subjects. Without ``[deploy] prometheus_url`` the
ledger alone draws the markers.

The numbers and marks come from ``greenlight.deploy.trending``; this module draws them.
"""
from __future__ import annotations

import time

from flask import Blueprint, abort, g, render_template, request

from greenlight.deploy import releases, trending
from greenlight.errors import GreenlightError
from greenlight.www import charts, dashboard
from greenlight.www.deploys_page import _deploy_settings, deploy_href, ledger

blueprint = Blueprint("trending", __name__, template_folder="templates")
FORMATS = {"share": charts.percent, "rate": charts.number, "seconds": charts.number}


def _markers(marks: list[trending.Mark]) -> list[charts.Marker]:
    return [charts.Marker(m.at, m.label, deploy_href(m.deploy_id) if m.deploy_id else "",
                          m.title, m.kind) for m in marks]


@blueprint.route("/")
def index() -> str:
    range_name = request.args.get("range", "1h")
    if range_name not in trending.RANGES:
        abort(400, f"range must be one of {', '.join(trending.RANGES)}, got {range_name!r}")
    deploy = _deploy_settings(g.settings)
    now = time.time()
    start, end, _ = trending.window(range_name, now)
    try:
        marks = trending.marks(ledger(), start, end,
                               lambda shas: releases.commit_subjects(deploy.repo, shas))
    except GreenlightError as exc:
        abort(503, f"deploy ledger unavailable ([deploy] ledger_url): {exc}")
    markers = _markers(marks)
    x_format = charts.clock if range_name == "1h" else charts.day_clock
    prometheus = deploy.judge.get("prometheus_url", "")
    trends = trending.trends(prometheus, range_name, now)
    groups: dict[str, list] = {"business": [], "system": []}
    for i, trend in enumerate(trends):
        chart = charts.line_chart(
            f"trend-{i}", trend.query.name,
            [charts.Series(trend.query.name, trend.points, "baseline")], markers=markers,
            x_range=(start, end), x_format=x_format, y_format=FORMATS[trend.query.unit],
            y_floor=0.0, height=200)
        groups[trend.query.group].append({"chart": chart, "error": trend.error})
    timeline = charts.line_chart(
        "deploy-markers", f"Deploys in the last {range_name}", [], markers=markers,
        x_range=(start, end), x_format=x_format, height=120,
        summary=f"{len(markers)} deploy, rollback and incident markers in the last "
                f"{range_name}")
    body = render_template(
        "greenlight/trending.html", range_name=range_name, ranges=list(trending.RANGES),
        groups=groups, timeline=timeline, marks=marks, prometheus=prometheus,
        deploy_href=deploy_href, colours=charts.COLOURS, utc=trending.utc,
        base=f"{dashboard.MOUNT}/trending/")
    return dashboard.layout("Trending", body)
