"""Render a Report as Markdown, JSON or one self-contained HTML page.

Renderers never compute: they only format what ``correlate`` decided. In HTML every string that
came from a commit, a trace or an alert is escaped; links are only emitted for http(s) URLs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from greenlight.incidents.model import TIERS, Report, iso

FORMATS = ("md", "json", "html")


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report)
    return render_markdown(report)


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, default=str) + "\n"


def evidence_text(report: Report, limit: int = 4000) -> str:
    """What came with the incident, readable: the judge's table, the alerts, or raw JSON."""
    evidence = report.incident.evidence or {}
    if isinstance(evidence.get("table"), str) and evidence["table"].strip():
        text = evidence["table"]
    elif isinstance(evidence.get("alerts"), list):
        lines = []
        for alert in evidence["alerts"]:
            labels = ", ".join(f"{k}={v}" for k, v in sorted((alert.get("labels") or {}).items()))
            summary = (alert.get("annotations") or {}).get("summary", "")
            lines.append(f"[{alert.get('status')}] {labels} since {alert.get('startsAt')} "
                         f"{summary}".rstrip())
        text = "\n".join(lines)
    elif evidence:
        text = json.dumps(evidence, indent=2, default=str)
    else:
        return ""
    return text if len(text) <= limit else text[:limit] + "\n… (truncated)"


def _md(text: Any) -> str:
    """Keep commit text from breaking the Markdown table/line structure."""
    return str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def _md_link(label: str, url: str | None) -> str:
    return f"[{label}]({url})" if url else label


def render_markdown(report: Report) -> str:
    inc = report.incident
    out = [f"# Incident: {_md(inc.title)}", ""]
    if inc.id is not None:
        out.append(f"- id: {inc.id}")
    out += [f"- started: {iso(inc.started_at)}", f"- source: {inc.source}"]
    if inc.service:
        out.append(f"- service: {_md(inc.service)}")
    out.append(f"- window: {iso(report.window_start)} → {iso(inc.started_at)}")
    if report.live:
        live = ", ".join(f"{_md(h)}: `{s[:12]}`" for h, s in sorted(report.live.items()))
        out.append(f"- live at start: {live}")
    out.append("")
    for note in report.notes:
        out.append(f"> {_md(note)}")
    if report.notes:
        out.append("")

    out += ["## Suspects", ""]
    if not report.suspects:
        out += ["No suspect commit.", ""]
    for rank, suspect in enumerate(report.suspects, 1):
        c = suspect.commit
        out.append(f"{rank}. **{_md_link(c.sha[:12], suspect.url)}** {_md(c.summary)} — "
                   f"{_md(c.author)} <{_md(c.email)}> — score {suspect.score:.1f}, "
                   f"{TIERS[suspect.tier]} (deploy {suspect.deploy.id})")
        if suspect.latent:
            out.append(f"   - **{_md(suspect.latent)}** ({iso(suspect.deploy.live_from)})")
        if suspect.changed_links:
            shown = ", ".join(_md_link(f"{_md(c['path'])}:{c['start']}" + (
                f"-{c['end']}" if c["end"] != c["start"] else ""), c["url"])
                for c in suspect.changed_links[:10])
            out.append(f"   - changed lines: {shown}")
        for ev in suspect.evidence:
            out.append(f"   - {ev.kind} +{ev.points:.1f}: {_md_link(_md(ev.detail), ev.url)}"
                       if ev.points >= 0 else f"   - {ev.kind} {ev.points:.1f}: {_md(ev.detail)}")
        if suspect.hidden_evidence:
            out.append(f"   - … {suspect.hidden_evidence} more evidence row(s) with fewer points "
                       f"(in the score, not shown)")
    out.append("")

    out += ["## Deploy timeline", "", "| when | deploy | kind | outcome | range | commits |",
            "|---|---|---|---|---|---|"]
    for entry in report.timeline:
        d = entry.deploy
        rng = f"{d.previous_sha[:12]}..{d.sha[:12]}" if d.previous_sha else d.sha[:12]
        commits = "; ".join(f"{_md_link(c.sha[:8], report.links.get(c.sha))} {_md(c.summary)}"
                            for c in entry.commits[:10])
        if len(entry.commits) > 10:
            commits += f"; … {len(entry.commits) - 10} more"
        if entry.note:
            commits = f"{_md(entry.note)}. {commits}"
        out.append(f"| {iso(d.started_at)} ({entry.position}) | {d.id} | {d.kind} | "
                   f"{d.outcome or ''} | {_md_link(rng, entry.compare_url)} | {commits} |")
    if not report.timeline:
        out.append("| — | — | — | — | — | no deploy |")
    out.append("")

    if report.after:
        out += ["## Deployed after the incident started (not suspects)", ""]
        for c in report.after:
            out.append(f"- {_md_link(c.sha[:12], report.links.get(c.sha))} {_md(c.summary)} "
                       f"— {_md(c.author)}")
        out.append("")
    evidence = evidence_text(report)
    if evidence:
        fence = "~~~~" if "```" in evidence else "```"
        out += ["## Evidence", "", fence, evidence.replace("~~~~", "~ ~ ~ ~"), fence, ""]
    if report.frames or report.unmapped_frames:
        out += ["## Stack frames", ""]
        for f in report.frames:
            mark = " ← failed here" if f.innermost else ""
            out.append(f"- `{_md(f.repo_path)}:{f.line}` {_md(f.function or '')}{mark}")
        for f in report.unmapped_frames:
            why = "library, not blamed" if f.library else "not in the repository"
            out.append(f"- `{_md(f.path)}:{f.line}` ({why})")
        out.append("")
    out += ["## 5 Whys", ""]
    for why in report.whys:
        out.append(f"{why['question']} {_md(why['answer']) or '_…_'}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:72em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
.score{font-weight:bold}.ev{margin:.1em 0}.neg{color:#777}.note{background:#fff5d6;padding:.5em}
code{background:#f3f3f3;padding:0 .2em}textarea{width:100%}
"""
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render_html(report: Report, form_action: str | None = None, *, fragment: bool = False,
                form_fields: str = "", whys_note: str = "", save_refused: str = "") -> str:
    """One HTML page (Jinja2, autoescaped); with ``form_action`` the 5 Whys become a form.

    ``fragment=True`` gives the report without html/head/body and title, to embed in a page
    that has its own layout. ``form_fields`` is trusted HTML put inside the form (a CSRF
    field); ``whys_note`` a sentence shown under the 5 Whys heading; ``save_refused`` disables
    the Save button with that reason.
    """
    return _TEMPLATES.get_template("report.html").render(
        report=report, inc=report.incident, fragment=fragment, style=Markup(_STYLE),
        form_action=form_action, form_fields=Markup(form_fields), whys_note=whys_note,
        save_refused=save_refused, evidence=evidence_text(report), tiers=TIERS, iso=iso)
