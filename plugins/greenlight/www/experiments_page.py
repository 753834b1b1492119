"""The experiments admin page: what every experiment shows users now, and the controls to change it.

Everyone who can see the Buildbot UI may read: the list (name, rollout status, experiment
status, the sentence explaining what users get now, as in the seed's admin table) and one page
per experiment with its history (who changed what, when) and its results per branch with
significance. Only the role ``experimenters`` may change the rollout percentage, send an
experiment back to "QA and admins only" or close it on a branch; the dashboard has checked the
login, the CSRF token and the origin before any POST reaches this module. Changes go through
the engine's admin API, which records who and when; app hosts pick them up within seconds.
"""
from __future__ import annotations

import functools
import html
import json
import logging
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, abort, g, jsonify, redirect, request

from greenlight.errors import GreenlightError, UsageError
from greenlight.experiments import explain
from greenlight.experiments.definition import CLOSED, QA, Experiment, check_name
from greenlight.experiments.store import ExperimentStore
from greenlight.www import dashboard, experiment_charts

blueprint = Blueprint("experiments", __name__)
log = logging.getLogger(__name__)

EXPERIMENTERS = "experimenters"
MAX_LIST_FIELD = 2000  # characters of a comma-separated QA users/groups field


@functools.lru_cache(maxsize=4)
def _store_for(url: str) -> ExperimentStore:
    return ExperimentStore(url)


def store_url(settings: Any) -> str:
    """The experiments database named by the settings: the one the app hosts and the CLI use."""
    return settings.expand(settings["experiments"]["db_url"])


def store() -> ExperimentStore:
    return _store_for(store_url(g.settings))


def _url(*parts: str) -> str:
    return "/".join([dashboard.MOUNT, "experiments", *parts]) + "/"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _name(name: str) -> str:
    """A name from the URL; anything outside the engine's alphabet cannot exist: 404."""
    try:
        return check_name(name)
    except UsageError:
        abort(404, "no such experiment")


def _get(name: str) -> Experiment:
    try:
        return store().get(_name(name))
    except UsageError as exc:
        abort(404, str(exc))


# --- pages ---------------------------------------------------------------------------------------
LIST_HEADERS = ("experiment", "rollout status", "experiment status", "what users get now",
                "last change")


@blueprint.route("/")
def experiment_list() -> str:
    states = store().load_all()
    experiments = [states[name] for name in sorted(states)]
    if not experiments:
        body = ("<p>No experiments defined yet. The application defines its experiments "
                "(<code>ExperimentClient.define</code>), or run <code>greenlight experiment "
                "define NAME --branches enhanced=0.5</code>.</p>")
        return dashboard.layout("Experiments", body)
    rows = []
    for e in experiments:
        rows.append(
            f'<tr id="experiment-{_e(e.name)}"><td><a href="{_e(_url(e.name))}">{_e(e.name)}'
            f"</a></td><td class=\"rollout\">{_e(e.status_label())}</td>"
            f'<td class="status">{_e(e.collection_status())}</td>'
            f'<td class="explanation">{_e(explain(e))}</td>'
            f"<td>{_e(_time(e.updated_at))} by {_e(e.updated_by or '?')}</td></tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in LIST_HEADERS)
    who = ("" if g.user.has(EXPERIMENTERS) else
           f"<p><em>Read-only: changing an experiment needs the role {EXPERIMENTERS}.</em></p>")
    body = (f"<p>{len(experiments)} experiment(s). Open one to change its rollout or read its "
            f"results.</p>{who}<table id=\"experiments\"><tr>{head}</tr>{''.join(rows)}</table>")
    return dashboard.layout("Experiments", body)


@blueprint.route("/<name>/")
def experiment_page(name: str) -> str:
    e = _get(name)
    the_store = store()
    weights = ", ".join(f"{_e(b)} {w * 100:g}%" for b, w in e.weights().items())
    facts = [("rollout status", _e(e.status_label())),
             ("experiment status", _e(e.collection_status())),
             ("what users get now", f'<span id="explanation">{_e(explain(e))}</span>'),
             ("branches", weights),
             ("QA users", _e(", ".join(e.qa_users)) or "<em>none listed</em>"),
             ("QA groups", _e(", ".join(e.qa_groups)) or "<em>none</em>"),
             ("last change", f"{_e(_time(e.updated_at))} by {_e(e.updated_by or '?')}")]
    if e.description:
        facts.insert(0, ("description", _e(e.description)))
    if e.planned_users:
        facts.append(("planned users per branch", f"{e.planned_users:,}"))
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in facts)
    body = [f'<table id="state">{table}</table>', _controls(e),
            "<h2>History</h2>", _history(the_store, e.name),
            "<h2>Results</h2>", _results(the_store, e.name),
            f'<p><a id="report-link" href="{_e(_url(e.name, "report"))}">Report by bucket over a '
            "date range</a></p>",
            f'<p><a href="{_e(_url())}">all experiments</a></p>']
    return dashboard.layout(f"Experiment {e.name}", "".join(body))


def _controls(e: Experiment) -> str:
    user = g.user
    if e.status == CLOSED:
        return (f"<p>Closed on <b>{_e(e.closed_branch)}</b>: closing is final (define a new "
                "experiment to test again).</p>")
    if user.anonymous:
        return "<p><em>Log in as an experimenter to change this experiment.</em></p>"
    allowed = user.has(EXPERIMENTERS)
    off = "" if allowed else f' disabled title="needs the role {EXPERIMENTERS}"'
    note = "" if allowed else f"<p><em>Only the role {EXPERIMENTERS} may change it.</em></p>"
    csrf = dashboard.csrf_field()
    current = f"{e.rollout_pct:g}" if e.status != QA else "0"
    options = "".join(f'<option value="{_e(b)}">{_e(b)}</option>' for b in e.all_branches())
    return (
        f'<h2>Change</h2>{note}<div id="controls">'
        f'<form method="post" action="{_e(_url(e.name, "rollout"))}" id="rollout-form">{csrf}'
        f'<label>Roll out to <input type="number" name="pct" min="0" max="100" step="any" '
        f'value="{_e(current)}" required>% of users</label> '
        f'<button type="submit"{off}>Set rollout</button></form>'
        f'<form method="post" action="{_e(_url(e.name, "qa"))}" id="qa-form">{csrf}'
        f'<label>QA users <input name="users" value="{_e(", ".join(e.qa_users))}" '
        f'maxlength="{MAX_LIST_FIELD}"></label> '
        f'<label>groups <input name="groups" value="{_e(", ".join(e.qa_groups))}" '
        f'maxlength="{MAX_LIST_FIELD}"></label> '
        f'<button type="submit"{off}>QA and admins only</button></form>'
        f'<form method="post" action="{_e(_url(e.name, "close"))}" id="close-form">{csrf}'
        f'<label>Close on <select name="branch">{options}</select></label> '
        f'<button type="submit"{off}>Close (launch to everybody)</button></form></div>')


def _detail_text(detail: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(detail.items()))


def _history(the_store: ExperimentStore, name: str) -> str:
    changes = the_store.history(name)
    if not changes:
        return "<p>No changes recorded.</p>"
    rows = "".join(f'<tr class="change"><td>{_e(_time(c.at))}</td><td class="by">{_e(c.by)}'
                   f'</td><td class="action">{_e(c.action)}</td>'
                   f"<td>{_e(_detail_text(c.detail))}</td></tr>"
                   for c in reversed(changes))
    return (f'<table id="history"><tr><th>when (UTC)</th><th>who</th><th>what</th>'
            f"<th>detail</th></tr>{rows}</table>")


def _results(the_store: ExperimentStore, name: str) -> str:
    """Results per branch; ``?since=36h`` (or an ISO time, or epoch seconds) narrows them to
    recent exposures and events, as ``greenlight experiment results --since`` does."""
    from greenlight.experiments import parse_since, render_results, results

    since_text = (request.args.get("since") or "").strip()
    form = (f'<form method="get" id="since-form"><label>since <input name="since" '
            f'value="{_e(since_text)}" placeholder="36h, 7d or 2024-05-01T12:00"></label> '
            '<button type="submit">Show</button></form>')
    try:
        data = results(name, store=the_store, since=parse_since(since_text or None))
    except GreenlightError as exc:
        return f'{form}<p class="bad">Results unavailable: {_e(exc)}</p>'
    if not any(data["exposed"].values()):
        return (f"{form}<p>No users exposed yet: users are counted once they are assigned to a "
                "branch (QA users while in QA, a share of everyone once rolled out).</p>")
    drawn = experiment_charts.render(the_store, name, data)
    return f'{form}{drawn}<div id="results">{render_results(data, "html")}</div>'


@blueprint.route("/<name>/report/")
def report_page(name: str) -> str:
    """The report over a date range (``?from=2024-05-01&to=2024-05-31&bucket=B``), the saved
    buckets, and for experimenters the form that saves one."""
    from greenlight.experiments import list_buckets, parse_day, render_report, report

    e = _get(name)
    the_store = store()
    start_text = (request.args.get("from") or "").strip()
    end_text = (request.args.get("to") or "").strip()
    chosen = [b for b in request.args.getlist("bucket") if b.strip()]
    saved = list_buckets(e.name, store=the_store)
    options = "".join(f'<label><input type="checkbox" name="bucket" value="{_e(b.name)}"'
                      f'{" checked" if b.name in chosen else ""}> {_e(b.name)}</label> '
                      for b in saved)
    form = (f'<form method="get" id="report-form"><label>from <input name="from" '
            f'value="{_e(start_text)}" placeholder="2024-05-01"></label> <label>to <input '
            f'name="to" value="{_e(end_text)}" placeholder="2024-05-31"></label> {options}'
            '<button type="submit">Report</button></form>')
    listing = "".join(f'<li class="saved-bucket"><b>{_e(b.name)}</b>: {_e(b.describe())}</li>'
                      for b in saved) or "<li>none yet: every report has the bucket all</li>"
    try:
        data = report(e.name, parse_day(start_text) if start_text else None,
                      parse_day(end_text, end=True) if end_text else None, chosen or None,
                      store=the_store)
        shown = render_report(data, "html")
    except GreenlightError as exc:
        shown = f'<p class="bad">Report unavailable: {_e(exc)}</p>'
    body = [form, shown, "<h2>Buckets</h2>", f'<ul id="buckets">{listing}</ul>',
            _bucket_form(e), f'<p><a href="{_e(_url(e.name))}">back to {_e(e.name)}</a></p>']
    return dashboard.layout(f"Report: {e.name}", "".join(body))


def _bucket_form(e: Experiment) -> str:
    if g.user.anonymous or not g.user.has(EXPERIMENTERS):
        return f"<p><em>Saving buckets needs the role {EXPERIMENTERS}.</em></p>"
    return (f'<form method="post" action="{_e(_url(e.name, "buckets"))}" id="bucket-form">'
            f"{dashboard.csrf_field()}"
            '<label>name <input name="bucket" required maxlength="100"></label> '
            '<label>attributes <input name="where" placeholder="platform=client; gender=f" '
            f'maxlength="{MAX_LIST_FIELD}"></label> '
            '<label>did <input name="did" placeholder="login:platform=client" '
            f'maxlength="{MAX_LIST_FIELD}"></label> '
            '<label>at least <input type="number" name="min_count" value="1" min="1"> times'
            '</label> <button type="submit">Save bucket</button></form>')


@blueprint.route("/<name>/buckets/", methods=["POST"], strict_slashes=False)
def save_bucket_action(name: str):
    def change(name: str):
        from greenlight.experiments import Bucket, save_bucket
        from greenlight.experiments.buckets import parse_did, parse_where

        fields = {}
        for field in ("bucket", "where", "did", "min_count"):
            value = request.form.get(field) or ""
            if len(value) > MAX_LIST_FIELD:
                abort(400, f"{field}: longer than {MAX_LIST_FIELD} characters")
            fields[field] = value.strip()
        try:
            min_count = int(fields["min_count"] or 1)
        except ValueError:
            abort(400, "min_count: a whole number >= 1")
        where = [w for w in fields["where"].split(";") if w.strip()]
        did = [d for d in fields["did"].split(";") if d.strip()]
        bucket = Bucket(fields["bucket"], parse_where(where), parse_did(did, min_count))
        save_bucket(name, bucket, g.user.name, store=store())
        log.info("experiment %s: bucket %s saved by %s", name, bucket.name, g.user.name)
        if request.accept_mimetypes.best == "application/json":
            return jsonify({"action": "bucket", "bucket": bucket.name,
                            "definition": bucket.describe()})
        return redirect(_url(name, "report"), code=303)

    return _act(name, change)


# --- actions -------------------------------------------------------------------------------------
def _list_field(field: str) -> list[str] | None:
    text = request.form.get(field)
    if text is None:
        return None
    if len(text) > MAX_LIST_FIELD:
        abort(400, f"{field}: longer than {MAX_LIST_FIELD} characters")
    return [item.strip() for item in text.split(",") if item.strip()]


def _done(e: Experiment, action: str):
    """JSON for API clients, otherwise back to the experiment's page (POST → redirect → GET)."""
    if request.accept_mimetypes.best == "application/json":
        from greenlight.experiments import experiment_summary

        return jsonify({"action": action, "by": g.user.name, "experiment": experiment_summary(e)})
    return redirect(_url(e.name), code=303)


def _act(name: str, change):
    dashboard.require_role(EXPERIMENTERS)
    name = _name(name)
    try:
        return change(name)
    except UsageError as exc:
        message = str(exc)
        abort(404 if message.startswith("no experiment named") else 400, message)


@blueprint.route("/<name>/rollout/", methods=["POST"], strict_slashes=False)
def rollout(name: str):
    def change(name: str):
        from greenlight.experiments import set_rollout

        pct = (request.form.get("pct") or "").strip()
        if not pct:
            abort(400, "pct: give the rollout percentage 0-100")
        e = set_rollout(name, pct, g.user.name, store=store())
        log.info("experiment %s rolled out to %g%% by %s", name, e.rollout_pct, g.user.name)
        return _done(e, "rollout")

    return _act(name, change)


@blueprint.route("/<name>/qa/", methods=["POST"], strict_slashes=False)
def qa_only(name: str):
    def change(name: str):
        from greenlight.experiments import set_qa

        e = set_qa(name, g.user.name, users=_list_field("users"),
                   groups=_list_field("groups"), store=store())
        log.info("experiment %s back to QA and admins only by %s", name, g.user.name)
        return _done(e, "qa")

    return _act(name, change)


@blueprint.route("/<name>/close/", methods=["POST"], strict_slashes=False)
def close_on(name: str):
    def change(name: str):
        from greenlight.experiments import close

        branch = (request.form.get("branch") or "").strip()
        if not branch:
            abort(400, "branch: name the branch to launch")
        e = close(name, branch, g.user.name, store=store())
        log.info("experiment %s closed on %s by %s", name, branch, g.user.name)
        return _done(e, "close")

    return _act(name, change)
