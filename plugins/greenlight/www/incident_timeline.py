"""The incident page's timeline drawn: the deploys of the report's window (rollbacks in their
own colour, each linking to its deploy page), the incident's start, and when each suspect
commit started serving, on one time axis. The report (``greenlight.incidents``) decides what
is on it; this module only places it (``greenlight.www.charts``).
"""
from __future__ import annotations

from flask import render_template

from greenlight.incidents.model import Report, iso
from greenlight.www import charts, dashboard

SUSPECTS_DRAWN = 5


def _deploy_css(kind: str, outcome: str | None) -> str:
    if kind == "rollback" or outcome == "rolled_back":
        return "rollback"
    return "failed" if outcome in ("failed", "aborted") else "deploy"


def markers(report: Report) -> list[charts.Marker]:
    """Deploys, the incident and the top suspects' ship times, as chart markers."""
    out = []
    for entry in report.timeline:
        d = entry.deploy
        subjects = "; ".join(c.summary for c in entry.commits[:5])
        out.append(charts.Marker(
            d.live_from.timestamp(), f"#{d.id}", f"{dashboard.MOUNT}/deploys/{d.id}",
            f"{d.kind} #{d.id} of {d.sha[:12]} ({d.outcome or 'running'}) at "
            f"{iso(d.live_from)}: {subjects}", _deploy_css(d.kind, d.outcome)))
    inc = report.incident
    out.append(charts.Marker(inc.started_at.timestamp(), "incident", "#",
                             f"incident started {iso(inc.started_at)}: {inc.title}",
                             "incident"))
    for rank, s in enumerate(report.suspects[:SUSPECTS_DRAWN], 1):
        out.append(charts.Marker(
            s.deploy.live_from.timestamp(), f"suspect {rank}", s.url or "",
            f"suspect {rank} {s.commit.sha[:12]} {s.commit.summary} (score {s.score:.1f}), "
            f"serving from {iso(s.deploy.live_from)} (deploy #{s.deploy.id})", "suspect",
            dashed=True))
    return out


def timeline_chart(report: Report) -> charts.LineChart:
    drawn = markers(report)
    # from the first deploy drawn, not the window's start: hours of an empty window would
    # crowd every marker into the right edge
    start, end = min(m.x for m in drawn), max(m.x for m in drawn)
    span = end - start
    pad = max(span * 0.06, 60.0)
    x_format = charts.clock if span < 86400 else charts.day_clock
    deploys = sum(1 for m in drawn if m.css in ("deploy", "rollback", "failed"))
    suspects = sum(1 for m in drawn if m.css == "suspect")
    return charts.line_chart(
        "incident-timeline", "Deploys, the incident and the suspects' ship times", [],
        markers=drawn, x_range=(start - pad, end + pad), x_format=x_format, height=150,
        summary=f"{deploys} deploy(s), the incident at {iso(report.incident.started_at)} and "
                f"{suspects} suspect ship time(s) on one time axis")


def render(report: Report) -> str:
    return render_template("incidents/timeline.html", chart=timeline_chart(report),
                                  colours=charts.COLOURS)
