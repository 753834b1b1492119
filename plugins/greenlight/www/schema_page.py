"""The schema review page: flagged migration statements, and the reviewers' Approve / Reject.

Everyone may read; only users with the role ``schema-reviewers`` may decide (Buildbot does not
authorize ``/plugins/*``, so the check is here; CSRF and same-origin are checked by the
dashboard before any POST reaches this module). A decision is bound to the finding key (the
migration path + the statement's normalized text, see ``schema_review.approvals``), so editing
the statement needs a new approval. When the last flagged statement of a commit is approved, the
commit's failed verify build is rebuilt at once, so nobody has to remember to push again.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request
from markupsafe import Markup

from greenlight.errors import GreenlightError, UsageError
from greenlight.www import dashboard
from schema_review.approvals import ApprovalStore

blueprint = Blueprint("schema", __name__, template_folder="templates")

REVIEWERS = "schema-reviewers"
VERIFY_BUILDER = "verify"
MAX_COMMENT = 2000
# Build ids already rebuilt by this master process: two reviewers approving the last two
# statements at the same moment must not start two rebuilds.
_rebuilt: set[int] = set()
_rebuild_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _store_for(url: str) -> ApprovalStore:
    return ApprovalStore(url)


def store() -> ApprovalStore:
    """The approvals store named by the settings (the one the verify build's check writes)."""
    settings = g.settings
    return _store_for(settings.expand(settings["schema"]["approvals_url"]))


# --- Buildbot reads (data API, through the dashboard glue) ----------------------------------
def _api_available() -> bool:
    return getattr(current_app, "buildbot_api", None) is not None


def commit_info(sha: str | None) -> dict[str, Any]:
    """The change Buildbot recorded for ``sha`` (message, author, repository): the approvals
    store keeps only what the check knew on the worker."""
    if not sha or not _api_available():
        return {}
    from buildbot.data.resultspec import Filter

    changes = dashboard.buildbot_get(current_app, ("changes",),
                                     filters=[Filter("revision", "eq", [sha])])
    if not changes:
        return {}
    change = changes[-1]
    return {"message": change.get("comments") or "", "author": change.get("author") or "",
            "changeid": change["changeid"], "repository": change.get("repository") or ""}


def verify_builds(sha: str) -> list[dict]:
    """All verify builds of ``sha`` (rebuilds included), oldest first."""
    from buildbot.data.resultspec import Filter

    builders = dashboard.buildbot_get(current_app, ("builders",),
                                      filters=[Filter("name", "eq", [VERIFY_BUILDER])])
    builder_ids = {b["builderid"] for b in builders}
    changes = dashboard.buildbot_get(current_app, ("changes",),
                                     filters=[Filter("revision", "eq", [sha])])
    builds: dict[int, dict] = {}
    for change in changes:
        for build in dashboard.buildbot_get(current_app, ("changes", change["changeid"],
                                                          "builds")):
            if build["builderid"] in builder_ids:
                builds[build["buildid"]] = build
    return [builds[i] for i in sorted(builds)]


def keys_awaiting(flagged: list[dict], decisions: dict[str, dict | None]) -> list[str]:
    """Keys of a build's flagged findings that still lack an approval (pure: easy to test)."""
    waiting = []
    for finding in flagged:
        key = finding.get("key")
        if not key or not finding.get("needs_review", True):
            continue
        decision = decisions.get(key)
        approved = bool(decision) and decision.get("decision") == "approved"
        if not approved and key not in waiting:
            waiting.append(key)
    return waiting


def rebuild_when_all_approved(sha: str | None) -> dict[str, Any]:
    """Rebuild ``sha``'s latest verify build if it stopped for schema review and every
    statement it flagged is now approved. Returns what happened, in words and ids."""
    if not sha:
        return {"rebuilt": False, "why": "the finding names no commit"}
    if not _api_available():
        return {"rebuilt": False, "why": "not running inside the Buildbot master"}
    with _rebuild_lock:
        builds = verify_builds(sha)
        if not builds:
            return {"rebuilt": False, "why": f"no verify build of {sha[:12]} found"}
        build = builds[-1]
        if not build["complete"]:
            return {"rebuilt": False, "build": build["buildid"],
                    "why": f"build {build['buildid']} of {sha[:12]} is still running"}
        if build["buildid"] in _rebuilt:
            return {"rebuilt": False, "build": build["buildid"],
                    "why": f"build {build['buildid']} was already rebuilt"}
        props = dashboard.buildbot_get(current_app, ("builds", build["buildid"], "properties"))
        needs_review = (props.get("schema_needs_review") or (False,))[0]
        if not needs_review:
            return {"rebuilt": False, "build": build["buildid"],
                    "why": f"the latest build of {sha[:12]} is not waiting for schema review"}
        flagged = (props.get("schema_findings") or ([],))[0] or []
        the_store = store()
        decisions = {f.get("key"): the_store.decision(f["key"]) for f in flagged if f.get("key")}
        waiting = keys_awaiting(flagged, decisions)
        if waiting:
            return {"rebuilt": False, "build": build["buildid"], "waiting": waiting,
                    "why": f"{len(waiting)} statement(s) of {sha[:12]} still await approval"}
        bsid, brids = dashboard.buildbot_control(current_app, "rebuild", {},
                                                 ("builds", build["buildid"]))
        _rebuilt.add(build["buildid"])
    return {"rebuilt": True, "build": build["buildid"], "buildset": bsid,
            "buildrequests": sorted(brids.values()) if isinstance(brids, dict) else brids,
            "why": f"every flagged statement of {sha[:12]} is approved: rebuilding build "
                   f"{build['buildid']}"}


# --- rendering (templates/greenlight/schema*.html; Jinja2 escapes every value) -------------
def size_text(size: dict | None) -> str:
    if not size:
        return "unknown"
    source = size.get("source") or "?"
    if source == "new":
        return "new table (small)"
    rows, size_bytes = size.get("rows"), size.get("bytes")
    parts = []
    if rows is not None:
        parts.append(f"~{int(rows):,} rows")
    if size_bytes is not None:
        parts.append(f"{int(size_bytes) / (1 << 20):,.0f} MiB")
    return f"{', '.join(parts) or 'unknown'} ({source})"


def _row(item: dict, commit: dict) -> dict[str, Any]:
    """What one table row shows of a pending item and the change Buildbot recorded for it."""
    findings = item.get("findings") or []
    size = next((f.get("table_size") for f in findings if f.get("table_size")), None)
    alternatives: list[str] = []
    for f in findings:
        if f.get("alternative") and f["alternative"] not in alternatives:
            alternatives.append(f["alternative"])
    message = (commit.get("message") or "").strip()
    return {
        "item": item,
        "sha": item.get("commit") or "",
        "subject": message.splitlines()[0] if message else "",
        "author": item.get("author") or commit.get("author") or "",
        "repo": item.get("repo") or commit.get("repository") or "",
        "size": size_text(size),
        "reasons": [reason for f in findings for reason in f.get("reasons", [])],
        "rules": sorted({f["rule"] for f in findings if f.get("rule")}),
        "alternatives": alternatives,
    }


@blueprint.errorhandler(GreenlightError)
def store_unavailable(exc: GreenlightError):
    """An unreachable approvals database is an operator's problem: say which, don't crash."""
    body = render_template("greenlight/schema_unavailable.html", error=str(exc))
    return dashboard.layout("Schema review unavailable", body), 503


@blueprint.route("/")
def pending_list() -> str:
    show_all = request.args.get("all") == "1"
    items = store().list_pending(include_decided=show_all)
    commits: dict[str, dict] = {}
    for item in items:
        sha = item.get("commit")
        if sha and sha not in commits:
            commits[sha] = commit_info(sha)
    user = g.user
    body = render_template(
        "greenlight/schema.html", show_all=show_all, mount=dashboard.MOUNT,
        rows=[_row(item, commits.get(item.get("commit") or "", {})) for item in items],
        anonymous=user.anonymous, can_act=not user.anonymous and user.has(REVIEWERS),
        reviewers=REVIEWERS, max_comment=MAX_COMMENT, csrf_field=Markup(dashboard.csrf_field()))
    return dashboard.layout("Schema review", body)


@blueprint.route("/decide", methods=["POST"])
def decide():
    dashboard.require_role(REVIEWERS)
    key = (request.form.get("key") or "").strip()
    decision = request.form.get("decision")
    comment = (request.form.get("comment") or "").strip()
    if not key:
        abort(400, "no finding key given")
    if decision not in ("approve", "reject"):
        abort(400, "decision must be approve or reject")
    if len(comment) > MAX_COMMENT:
        abort(400, f"comment longer than {MAX_COMMENT} characters")
    the_store = store()
    try:
        method = the_store.approve if decision == "approve" else the_store.reject
        result = method(key, g.user.name, comment)
    except UsageError as exc:
        abort(404, str(exc))
    rebuild = (rebuild_when_all_approved(result.get("commit")) if decision == "approve" else
               {"rebuilt": False, "why": "rejected: the build stays stopped"})
    result["rebuild"] = rebuild
    if request.accept_mimetypes.best == "application/json":
        return jsonify(result)
    body = render_template("greenlight/schema_decision.html", result=result, key=key,
                           rebuild=rebuild, mount=dashboard.MOUNT)
    return dashboard.layout("Schema review: decision recorded", body)
