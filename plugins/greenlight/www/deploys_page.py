"""Deploys page: the deploy ledger as a timeline, one page per deploy with its phase events and
the judge's verdict tables. Read-only: deploys and rollbacks are started from the ``deploy`` and
``rollback`` builders, which need the ``deployers`` role."""
from __future__ import annotations

import functools
import html
import json

from flask import Blueprint, abort, g

from greenlight.errors import GreenlightError
from greenlight.www import dashboard

blueprint = Blueprint("deploys", __name__)
OUTCOME_CLASS = {"success": "ok", "rolled_back": "bad", "failed": "bad", "aborted": "bad",
                 "interrupted": "warn", "running": "warn"}


@functools.lru_cache(maxsize=4)
def _ledger_for(url: str):
    from greenlight.deploy.ledger import Ledger

    return Ledger(url)


def _ledger():
    settings = g.settings
    return _ledger_for(settings.expand(settings["deploy"]["ledger_url"]))


def _short(sha: str | None) -> str:
    return html.escape((sha or "")[:10]) or "—"


def _when(moment) -> str:
    return html.escape(moment.strftime("%Y-%m-%d %H:%M:%S UTC")) if moment else "—"


@blueprint.route("/")
def index() -> str:
    try:
        ledger = _ledger()
        records = ledger.list_deploys(limit=100)
        bad = ledger.bad_releases()
    except GreenlightError as exc:
        abort(503, f"deploy ledger unavailable ([deploy] ledger_url): {exc}")
    rows = []
    for record in records:
        css = OUTCOME_CLASS.get(record.outcome, "")
        flag = " (bad release)" if record.sha in bad else ""
        rows.append(
            f"<tr class='{css}'><td><a href='{dashboard.MOUNT}/deploys/{record.id}'>"
            f"#{record.id}</a></td><td>{html.escape(record.kind)}</td>"
            f"<td><code>{_short(record.sha)}</code>{html.escape(flag)}</td>"
            f"<td><code>{_short(record.previous_sha)}</code></td>"
            f"<td>{len(record.commits)}</td><td>{html.escape(record.outcome)}</td>"
            f"<td>{_when(record.started_at)}</td><td>{_when(record.finished_at)}</td>"
            f"<td>{html.escape(record.trigger or '')}</td></tr>")
    body = ("<p>Every deploy and rollback from the ledger, newest first. Start one from the "
            "<code>deploy</code> or <code>rollback</code> builder (role deployers).</p>"
            "<table><tr><th>deploy</th><th>kind</th><th>release</th><th>previous</th>"
            "<th>commits</th><th>outcome</th><th>started</th><th>finished</th><th>trigger</th>"
            f"</tr>{''.join(rows) or '<tr><td colspan=9>no deploy yet</td></tr>'}</table>")
    return dashboard.layout("Deploys", body)


@blueprint.route("/<int:deploy_id>")
def show(deploy_id: int) -> str:
    try:
        record = _ledger().deploy(deploy_id)
    except GreenlightError:
        abort(404, f"no deploy #{deploy_id}")
    events = []
    for event in record.events:
        data = dict(event.data or {})
        table = data.pop("table", None)
        extra = f"<pre>{html.escape(table)}</pre>" if table else ""
        events.append(
            f"<tr><td>{_when(event.at)}</td><td>{html.escape(event.phase)}</td>"
            f"<td>{html.escape(event.host or '')}</td><td><code>{_short(event.release)}</code>"
            f"</td><td><pre>{html.escape(json.dumps(data, indent=1, default=str))}</pre>"
            f"{extra}</td></tr>")
    commits = "".join(f"<li><code>{html.escape(c)}</code></li>" for c in record.commits)
    body = (f"<p>{html.escape(record.kind)} of <code>{html.escape(record.sha)}</code> "
            f"(previous <code>{html.escape(record.previous_sha or '—')}</code>) on branch "
            f"{html.escape(record.branch or '—')}: <b>{html.escape(record.outcome)}</b>. "
            f"Triggered by {html.escape(record.trigger or '—')}.</p>"
            f"<p>{html.escape(record.detail or '')}</p>"
            f"<h2>Commits shipped</h2><ul>{commits or '<li>none</li>'}</ul>"
            f"<h2>Hosts</h2><p>{html.escape(', '.join(record.hosts))}</p>"
            "<h2>Phase events</h2><table><tr><th>at</th><th>phase</th><th>host</th>"
            f"<th>release</th><th>data</th></tr>{''.join(events)}</table>")
    return dashboard.layout(f"Deploy #{record.id}", body)
