"""Incidents ↔ commits: which deploys and commits came before an incident, ranked by evidence.

Public surface (the rest is private and free to change):

- ``parse_intake(body, content_type) -> Incident`` — Alertmanager webhook or plain JSON form
- ``incident_from_request(request, ledger) -> Incident`` — the deploy judge's rollback
- ``build_report(incident, ledger, repo, settings) -> Report`` — correlate and rank
- ``render_markdown / render_json / render_html(report) -> str``
- ``IncidentStore(url)`` — incidents and 5 Whys answers in the ledger's database
- ``whys_from_form(fields) -> list[str]`` — the answers the HTML page's form posts
"""
from greenlight.incidents.build import build_report
from greenlight.incidents.intake import incident_from_request, parse_intake
from greenlight.incidents.model import Incident, Report
from greenlight.incidents.render import render_html, render_json, render_markdown
from greenlight.incidents.store import IncidentStore, whys_from_form

__all__ = ["Incident", "IncidentStore", "Report", "build_report", "incident_from_request",
           "parse_intake", "render_html", "render_json", "render_markdown", "whys_from_form"]
