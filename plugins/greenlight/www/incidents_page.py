"""The incidents pages: a list, one report per incident, the 5 Whys form, the alert intake.

Reading is open to everyone who can see the Buildbot UI; saving the 5 Whys needs the role
``engineers`` (the dashboard checks the login and CSRF token before the view runs). The intake
is a webhook (Prometheus Alertmanager or the plain JSON form): it is exempt from the CSRF check
because it authenticates every request itself with HTTP Basic credentials of a user holding
``engineers`` or ``deployers``.

Only adapts: rollback ingestion and alert de-duplication are ``greenlight.incidents.ingest``'s,
git reads are ``greenlight.git.history``'s, HTML comes from Jinja2 templates (autoescaped) and
the engine's report renderer. Reports are rebuilt on each view, so saved 5 Whys answers and
later deploys always show. When the settings name no link templates (the demo's local bare
repository has no forge), commits, ranges and blamed lines link to the small git viewer at the
end of this module instead.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request
from markupsafe import Markup

from greenlight.deploy.ledger import Ledger
from greenlight.errors import GreenlightError, UsageError
from greenlight.git.history import GitHistory
from greenlight.incidents import (
    IncidentStore,
    build_report,
    parse_intake,
    render_html,
    render_json,
    whys_from_form,
)
from greenlight.incidents.ingest import duplicate_of, ingest_rollbacks
from greenlight.incidents.model import iso
from greenlight.www import dashboard, incident_timeline

blueprint = Blueprint("incidents", __name__, template_folder="templates")

ENGINEERS = "engineers"
INTAKE_ROLES = ("engineers", "deployers")
MAX_BODY = 1 << 20               # an Alertmanager group of hundreds of alerts fits easily
REALM = 'Basic realm="Greenlight incidents", charset="UTF-8"'
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_LINK_KEYS = ("web_url", "commit_url", "compare_url", "blame_url")


def _url(*parts: Any) -> str:
    return "/".join([dashboard.MOUNT, "incidents", *(str(p) for p in parts)])


def _page(title: str, template: str, **context: Any) -> str:
    return dashboard.layout(title, Markup(render_template(f"incidents/{template}", **context)))


# --- the engine's stores, as the settings name them ------------------------------------------
@functools.lru_cache(maxsize=4)
def _ledger_for(url: str) -> Ledger:
    return Ledger(url)


@functools.lru_cache(maxsize=4)
def _store_for(url: str) -> IncidentStore:
    return IncidentStore(engine=_ledger_for(url).engine)


def ledger() -> Ledger:
    """The deploy ledger named by ``[deploy] ledger_url``; incidents live in its database."""
    return _ledger_for(g.settings.expand(g.settings["deploy"]["ledger_url"]))


def incident_store() -> IncidentStore:
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
    """Correlate ``incident`` with the ledger and the repository (one git session). A page
    view only reads: the change index is used where filled, never written (deploys fill it)."""
    conf = {**incident_settings(), "change_index": "read"}
    with GitHistory(repo_path(), ignore_revs=conf.get("mechanical_commits") or ()) as history:
        return build_report(incident, ledger(), history, conf)


# --- pages --------------------------------------------------------------------------------
def _top_suspect(report: dict | None) -> dict | None | bool:
    """The saved report's first suspect; None when no report was saved, False when empty."""
    if not report:
        return None
    suspects = report.get("suspects") or []
    if not suspects:
        return False
    top, commit = suspects[0], suspects[0].get("commit") or {}
    return {"sha": str(top.get("sha", "")), "summary": commit.get("summary"),
            "author": commit.get("author"), "score": top.get("score")}


@blueprint.route("/")
def incident_list() -> str:
    """Read only: the judge's rollbacks become incidents in the deploy's ``incident report``
    step (``greenlight incident rollbacks``) or by the POST below, never by a page view."""
    store = incident_store()
    rows = [{"id": i.id, "url": _url(i.id), "title": i.title, "started": iso(i.started_at),
             "source": i.source, "service": i.service or "",
             "top": _top_suspect(store.report(i.id))} for i in store.list(limit=100)]
    waiting, read_error = 0, None
    try:
        waiting = len(ledger().incidents(status="open"))
    except Exception as exc:             # noqa: BLE001 - listing what is stored matters more
        read_error = str(exc)[:300]
    user = g.user
    may_ingest = not user.anonymous and any(user.has(r) for r in INTAKE_ROLES)
    return _page("Incidents", "list.html", incidents=rows, intake_url=_url("intake"),
                 waiting=waiting, read_error=read_error, ingest_url=_url("rollbacks"),
                 ingest_fields=Markup(dashboard.csrf_field()) if may_ingest else None,
                 ingest_error=request.args.get("ingest_error"))


@blueprint.route("/rollbacks", methods=["POST"])
def report_rollbacks():
    """Turn the judge's open rollback requests into incidents now (role engineers or
    deployers, CSRF token): what the deploy's ``incident report`` step does after a deploy."""
    dashboard.require_role(*INTAKE_ROLES)
    try:
        ingest_rollbacks(ledger(), incident_store(), build)
    except GreenlightError as exc:
        return redirect(_url("") + "?" + urlencode({"ingest_error": str(exc)[:300]}), code=303)
    return redirect(_url(""), code=303)


def _get_incident(incident_id: int):
    try:
        return incident_store().get(incident_id)
    except UsageError as exc:
        abort(404, str(exc))


@blueprint.route("/<int:incident_id>")
def incident_page(incident_id: int) -> str:
    incident = _get_incident(incident_id)
    try:
        report = build(incident)
    except GreenlightError as exc:
        return _page(f"Incident {incident_id}: {incident.title}", "report_error.html",
                     error=str(exc), trace=incident.trace or "")
    user = g.user
    if user.anonymous:
        note, fields, refused = "Log in as an engineer to save the 5 Whys.", "", ""
    elif user.has(ENGINEERS):
        note, fields, refused = "", dashboard.csrf_field(), ""
    else:
        note, fields = f"Only the role {ENGINEERS} may save the 5 Whys.", dashboard.csrf_field()
        refused = f"needs the role {ENGINEERS}"
    page = render_html(report, form_action=None if user.anonymous else _url(incident_id, "whys"),
                       fragment=True, form_fields=fields, whys_note=note, save_refused=refused)
    links = (f'<p><a href="{_url("")}">all incidents</a> · '
             f'<a href="{_url(f"{incident_id}.json")}">JSON</a></p>')
    drawn = incident_timeline.render(report)
    return dashboard.layout(f"Incident {incident_id}: {incident.title}",
                            Markup(links + drawn + page))


@blueprint.route("/<int:incident_id>.json")
def incident_json(incident_id: int) -> Response:
    try:
        report = build(_get_incident(incident_id))
    except GreenlightError as exc:
        return _json(500, {"error": str(exc)})
    return Response(render_json(report), mimetype="application/json")


@blueprint.route("/<int:incident_id>/whys", methods=["POST"])
def save_whys(incident_id: int):
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


@blueprint.route("/intake", methods=["POST"])
@dashboard.csrf_exempt
def intake() -> Response:
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
    existing = duplicate_of(store, incident)
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
def _history() -> GitHistory:
    try:
        return GitHistory(repo_path())
    except UsageError:
        abort(404, "the watched repository is not a local git repository")


def _sha(value: str) -> str:
    if not _SHA.match(value):
        abort(404, f"{value!r} is not a commit id")
    return value


def _diff_page(title: str, read) -> str:
    limit = 400_000
    with _history() as history:
        try:
            text = read(history)
        except GreenlightError as exc:
            abort(404, str(exc)[:300])
    lines = [("add" if line.startswith("+") and not line.startswith("+++") else
              "del" if line.startswith("-") and not line.startswith("---") else
              "hunk" if line.startswith("@@") else "", line)
             for line in text[:limit].split("\n")]
    return _page(title, "diff.html", lines=lines, truncated=len(text) > limit)


@blueprint.route("/git/commit/<sha>")
def git_commit(sha: str) -> str:
    return _diff_page(f"Commit {sha[:12]}", lambda h: h.show_text(_sha(sha)))


@blueprint.route("/git/compare/<base>...<sha>")
def git_compare(base: str, sha: str) -> str:
    return _diff_page(f"Commits {base[:12]}..{sha[:12]}",
                      lambda h: h.compare_text(_sha(base), _sha(sha)))


@blueprint.route("/git/blame/<sha>/<path:path>")
def git_blame(sha: str, path: str) -> str:
    with _history() as history:
        try:
            lines = history.blame_file(_sha(sha), path)
        except GreenlightError as exc:
            abort(404, str(exc)[:300])
    rows = [{"line": n, "commit": hit.commit, "text": hit.text,
             "commit_url": _url("git", "commit", hit.commit)} for n, hit in sorted(lines.items())]
    return _page(f"Blame {path} at {sha[:12]}", "blame.html", rows=rows)
