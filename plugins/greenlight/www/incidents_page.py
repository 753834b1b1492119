"""The incidents pages: a list, one report per incident, the 5 Whys form, the alert intake.

Reading is open to everyone who can see the Buildbot UI; saving the 5 Whys needs the role
``engineers`` (the dashboard checks the login and CSRF token before the view runs). The intake
is a webhook (Prometheus Alertmanager or the plain JSON form): it is exempt from the CSRF check
because it authenticates every request itself with HTTP Basic credentials of a user holding
``engineers`` or ``deployers``.

Reports are rebuilt from the ledger and the repository on each view, so saved 5 Whys answers
and later deploys always show. When the settings name no link templates (the demo's local bare
repository has no forge), commits, ranges and blamed lines link to the small git viewer at the
end of this module instead, so every suspect still links to its changed lines.
"""
from __future__ import annotations

import functools
import html
import json
import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, redirect, request

from greenlight.errors import GreenlightError, UsageError
from greenlight.www import dashboard

blueprint = Blueprint("incidents", __name__)
log = logging.getLogger(__name__)

ENGINEERS = "engineers"
INTAKE_ROLES = ("engineers", "deployers")
MAX_BODY = 1 << 20               # an Alertmanager group of hundreds of alerts fits easily
REALM = 'Basic realm="Greenlight incidents", charset="UTF-8"'
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_LINK_KEYS = ("web_url", "commit_url", "compare_url", "blame_url")
# Judge rollbacks turn into incidents once, even when two list views arrive together.
_ingest_lock = threading.Lock()


def _url(*parts: Any) -> str:
    return "/".join([dashboard.MOUNT, "incidents", *(str(p) for p in parts)])


# --- the engine's stores, as the settings name them ------------------------------------------
@functools.lru_cache(maxsize=4)
def _ledger_for(url: str):
    from greenlight.deploy.ledger import Ledger

    return Ledger(url)


@functools.lru_cache(maxsize=4)
def _store_for(url: str):
    from greenlight.incidents import IncidentStore

    return IncidentStore(engine=_ledger_for(url).engine)


def ledger():
    """The deploy ledger named by ``[deploy] ledger_url``; incidents live in its database."""
    return _ledger_for(g.settings.expand(g.settings["deploy"]["ledger_url"]))


def incident_store():
    return _store_for(g.settings.expand(g.settings["deploy"]["ledger_url"]))


def repo_path() -> str:
    """The watched repository (the demo's local bare repo unless ``[repository] url``)."""
    return g.settings.repo_url


def incident_settings() -> dict[str, Any]:
    """``[incidents]`` with the page's own git viewer as link templates when none are set."""
    conf = dict(g.settings["incidents"])
    if not any(conf.get(k) for k in _LINK_KEYS):
        conf.update(link_preset="", commit_url=_url("git", "commit", "{sha}"),
                    compare_url=_url("git", "compare", "{base}...{sha}"),
                    blame_url=_url("git", "blame", "{sha}", "{path}") + "#L{line}")
    return conf


def build(incident):
    """Correlate ``incident`` with the ledger and the repository (one git session)."""
    from greenlight.incidents import build_report
    from greenlight.git.history import GitHistory

    history = GitHistory(repo_path())
    try:
        return build_report(incident, ledger(), history, incident_settings())
    finally:
        history.repo.close()


def ingest_rollbacks() -> list[int]:
    """Open a report for each rollback the deploy judge asked about (idempotent)."""
    from greenlight.incidents import incident_from_request

    made = []
    with _ingest_lock:
        the_ledger, store = ledger(), incident_store()
        for ask in the_ledger.incidents(status="open"):
            incident = store.by_request(ask.id) or incident_from_request(ask, the_ledger)
            try:
                report = build(incident).to_dict()
            except Exception:           # one broken report must not hide the list
                log.exception("incident report for judge request %s failed", ask.id)
                report = None           # the page shows why when it is opened
            made.append(store.save(incident, report, request_id=ask.id))
            the_ledger.set_incident_status(ask.id, "reported")
    return made


# --- pages --------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _top_suspect(report: dict | None) -> str:
    if not report:
        return "<em>no report yet</em>"
    suspects = report.get("suspects") or []
    if not suspects:
        return "<em>none</em>"
    top = suspects[0]
    commit = top.get("commit") or {}
    return (f"<code>{_e(str(top.get('sha', ''))[:12])}</code> {_e(commit.get('summary'))} "
            f"— {_e(commit.get('author'))} <small>(score {_e(top.get('score'))})</small>")


@blueprint.route("/")
def incident_list() -> str:
    from greenlight.incidents.model import iso

    try:
        ingest_rollbacks()
    except GreenlightError:
        pass                            # listing what is stored matters more
    store = incident_store()
    incidents = store.list(limit=100)
    if not incidents:
        body = ("<p>No incidents yet. Alertmanager (or anyone with the role engineers or "
                f"deployers) can post to <code>{_e(_url('intake'))}</code>; a rolled-back "
                "canary opens one by itself.</p>")
        return dashboard.layout("Incidents", body)
    rows = []
    for incident in incidents:
        rows.append(f'<tr id="incident-{incident.id}"><td>{incident.id}</td>'
                    f'<td><a href="{_e(_url(incident.id))}">{_e(incident.title)}</a></td>'
                    f"<td>{_e(iso(incident.started_at))}</td><td>{_e(incident.source)}</td>"
                    f"<td>{_e(incident.service or '')}</td>"
                    f"<td>{_top_suspect(store.report(incident.id))}</td></tr>")
    body = (f"<p>{len(incidents)} incident(s), newest first.</p><table id='incidents'>"
            "<tr><th>id</th><th>title</th><th>started</th><th>source</th><th>service</th>"
            f"<th>top suspect</th></tr>{''.join(rows)}</table>")
    return dashboard.layout("Incidents", body)


def _get_incident(incident_id: int):
    try:
        return incident_store().get(incident_id)
    except UsageError as exc:
        abort(404, str(exc))


@blueprint.route("/<int:incident_id>")
def incident_page(incident_id: int) -> str:
    from greenlight.incidents import render_html

    incident = _get_incident(incident_id)
    try:
        report = build(incident)
    except GreenlightError as exc:
        body = (f"<p class='bad'>The report cannot be built: {_e(exc)}</p>"
                f"<pre>{_e(incident.trace or '')}</pre>")
        return dashboard.layout(f"Incident {incident_id}: {incident.title}", body)
    user = g.user
    if user.anonymous:
        note, fields = "<p><em>Log in as an engineer to save the 5 Whys.</em></p>", ""
    else:
        fields = dashboard.csrf_field()
        note = "" if user.has(ENGINEERS) else (
            f"<p><em>Only the role {ENGINEERS} may save the 5 Whys.</em></p>")
    page = render_html(report, form_action=None if user.anonymous else _url(incident_id, "whys"),
                       fragment=True, form_fields=fields)
    if note:
        page = page.replace("<h2>5 Whys</h2>", f"<h2>5 Whys</h2>{note}", 1)
    if not user.anonymous and not user.has(ENGINEERS):
        page = page.replace('<button type="submit">Save</button>',
                            f'<button type="submit" disabled title="needs the role {ENGINEERS}">'
                            "Save</button>", 1)
    links = (f'<p><a href="{_e(_url(""))}">all incidents</a> · '
             f'<a href="{_e(_url(f"{incident_id}.json"))}">JSON</a></p>')
    return dashboard.layout(f"Incident {incident_id}: {incident.title}", links + page)


@blueprint.route("/<int:incident_id>.json")
def incident_json(incident_id: int) -> Response:
    from greenlight.incidents import render_json

    try:
        report = build(_get_incident(incident_id))
    except GreenlightError as exc:
        return _json(500, {"error": str(exc)})
    return Response(render_json(report), mimetype="application/json")


@blueprint.route("/<int:incident_id>/whys", methods=["POST"])
def save_whys(incident_id: int):
    from greenlight.incidents import whys_from_form

    dashboard.require_role(ENGINEERS)
    _get_incident(incident_id)
    try:
        answers = whys_from_form(request.form)
        incident_store().save_whys(incident_id, answers)
    except UsageError as exc:
        abort(400, str(exc))
    return redirect(_url(incident_id) + "#whys", code=303)


# --- the webhook -----------------------------------------------------------------------------
def _json(status: int, data: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(data) + "\n", status=status, mimetype="application/json",
                    headers=headers or {})


def _intake_refusal() -> Response | None:
    """Who posts? Only Basic credentials count here: a browser's session cookie must not let
    another site post alerts in the user's name (this view skips the CSRF check)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return _json(403, {"error": "cross-site post refused"})
    guard = current_app.config["GREENLIGHT_GUARD"]
    user = guard.user_from({}, request.headers.get("Authorization"))
    if user.anonymous:
        return _json(401, {"error": "send HTTP Basic credentials of a user with the role "
                                    "engineers or deployers"}, {"WWW-Authenticate": REALM})
    if not any(user.has(role) for role in INTAKE_ROLES):
        return _json(403, {"error": f"user {user.name} needs the role engineers or deployers"})
    return None


def _duplicate_of(incident) -> int | None:
    """Alertmanager resends a group (repeat_interval, resolved): one incident per group start."""
    if incident.source != "alertmanager":
        return None
    key = incident.evidence.get("groupKey")
    for known in incident_store().list(limit=200):
        if (known.source == incident.source and known.started_at == incident.started_at
                and known.title == incident.title and known.evidence.get("groupKey") == key):
            return known.id
    return None


@blueprint.route("/intake", methods=["POST"])
@dashboard.csrf_exempt
def intake() -> Response:
    from greenlight.incidents import parse_intake

    refused = _intake_refusal()
    if refused is not None:
        return refused
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _json(413, {"error": f"body over {MAX_BODY} bytes; send one alert group"})
    try:
        incident = parse_intake(body, request.content_type)
    except UsageError as exc:
        return _json(400, {"error": str(exc)})
    store = incident_store()
    existing = _duplicate_of(incident)
    if existing is not None:
        return _json(200, {"id": existing, "url": _url(existing), "duplicate": True})
    store.save(incident)
    answer: dict[str, Any] = {"id": incident.id, "url": _url(incident.id), "title": incident.title}
    try:
        report = build(incident)
    except GreenlightError as exc:
        answer["report_error"] = str(exc)      # stored anyway; the page retries on view
        return _json(201, answer)
    store.save(incident, report.to_dict())
    answer["suspects"] = [s.commit.sha for s in report.suspects[:5]]
    answer["notes"] = report.notes
    return _json(201, answer)


# --- a small git viewer, the link target when no forge is configured ------------------------
def _git(*args: str) -> str:
    import git

    try:
        repo = git.Repo(repo_path())
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        abort(404, "the watched repository is not a local git repository")
    try:
        return repo.git.execute(["git", "-c", "core.quotePath=false", *args],
                                stdout_as_string=True, strip_newline_in_stdout=False)
    except git.GitCommandError as exc:
        abort(404, f"git {args[0]}: {str(exc.stderr).strip()[:300]}")
    finally:
        repo.close()


def _sha(value: str) -> str:
    if not _SHA.match(value):
        abort(404, f"{value!r} is not a commit id")
    return value


def _diff_html(text: str, limit: int = 400_000) -> str:
    if len(text) > limit:
        text = text[:limit] + "\n… (truncated)\n"
    out = []
    for line in text.split("\n"):
        css = ("add" if line.startswith("+") and not line.startswith("+++") else
               "del" if line.startswith("-") and not line.startswith("---") else
               "hunk" if line.startswith("@@") else "")
        out.append(f'<span class="{css}">{_e(line)}</span>' if css else _e(line))
    return ("<style>.add{background:#e6ffec}.del{background:#ffebe9}.hunk{color:#0550ae}"
            f"</style><pre>{chr(10).join(out)}</pre>")


@blueprint.route("/git/commit/<sha>")
def git_commit(sha: str) -> str:
    text = _git("show", "--no-ext-diff", "--no-textconv", "--stat", "--patch", "-M",
                "--format=fuller", _sha(sha), "--")
    return dashboard.layout(f"Commit {sha[:12]}", _diff_html(text))


@blueprint.route("/git/compare/<base>...<sha>")
def git_compare(base: str, sha: str) -> str:
    text = _git("log", "--no-ext-diff", "--no-textconv", "-n", "200", "--stat", "--patch", "-M",
                "--format=fuller", f"{_sha(base)}..{_sha(sha)}", "--")
    return dashboard.layout(f"Commits {base[:12]}..{sha[:12]}", _diff_html(text))


@blueprint.route("/git/blame/<sha>/<path:path>")
def git_blame(sha: str, path: str) -> str:
    from greenlight.git.history import parse_blame

    text = _git("blame", "--line-porcelain", "--root", "-M", "-C", _sha(sha), "--", path)
    lines = parse_blame(text, sha, path)
    rows = []
    for number in sorted(lines):
        hit = lines[number]
        rows.append(f'<tr id="L{number}"><td><a href="#L{number}">{number}</a></td>'
                    f'<td><a href="{_e(_url("git", "commit", hit.commit))}">'
                    f"<code>{_e(hit.commit[:8])}</code></a></td>"
                    f"<td><pre>{_e(hit.text)}</pre></td></tr>")
    body = ("<style>tr:target{background:#fff5b1}td pre{margin:0;padding:0;background:none}"
            f"</style><table class='blame'>{''.join(rows)}</table>")
    return dashboard.layout(f"Blame {path} at {sha[:12]}", body)
