"""Forge webhooks (GitHub, GitLab, Gitea/Forgejo) as the same change records the post-receive
hook makes (``greenlight.push.changes.change_for``): a team on a forge has no server hook.

Pure: headers and body in, the forge's verdict on the signature and the change records out.
The HTTP endpoint (``greenlight.www.webhooks``) submits them to Buildbot.

What a payload cannot say, compared with the hook that sees the repository: a force push is
known only on GitHub (``forced``); on the others the pushed ``before`` is kept as the base and
the verify build's ResolveBase replaces it when it is not an ancestor of the pushed head. A
forge lists at most 20 (GitLab) or 2048 (GitHub) commits: ``greenlight_commits_complete`` says
whether the list (and the files taken from it) is whole.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from greenlight.push.changes import RefUpdate, push_id

FORGES = ("github", "gitlab", "gitea")


class WebhookError(ValueError):
    """The request is not a push this endpoint can build (HTTP 400, with this message)."""


class BadSignature(WebhookError):
    """The request does not carry the shared secret's signature (HTTP 401)."""


@dataclass(frozen=True)
class Delivery:
    """One webhook request, reduced to what matters: which forge, which event, which id."""

    forge: str
    event: str
    delivery_id: str | None
    payload: dict


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower(), "")


def _hmac_sha256(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(forge: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> None:
    """Raise BadSignature unless the request carries ``secret`` the way ``forge`` signs:
    GitHub ``X-Hub-Signature-256: sha256=<hex HMAC>``, GitLab ``X-Gitlab-Token: <secret>``,
    Gitea/Forgejo ``X-Gitea-Signature`` (or ``X-Forgejo-Signature``): ``<hex HMAC>``."""
    if not secret:
        raise BadSignature("no webhook secret configured: every request is refused")
    if forge == "github":
        given = _header(headers, "X-Hub-Signature-256")
        expected = "sha256=" + _hmac_sha256(secret, body)
        name = "X-Hub-Signature-256"
    elif forge == "gitlab":
        given, expected, name = _header(headers, "X-Gitlab-Token"), secret.decode(), \
            "X-Gitlab-Token"
    elif forge == "gitea":
        given = _header(headers, "X-Gitea-Signature") or _header(headers, "X-Forgejo-Signature")
        expected, name = _hmac_sha256(secret, body), "X-Gitea-Signature"
    else:
        raise WebhookError(f"unknown forge {forge!r}; expected one of {', '.join(FORGES)}")
    if not given:
        raise BadSignature(f"{forge}: missing {name} header")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadSignature(f"{forge}: {name} does not match the configured secret")


def parse(forge: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The event name, delivery id and JSON payload of a (verified) request."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookError(f"{forge}: body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookError(f"{forge}: expected a JSON object")
    if forge == "github":
        event = _header(headers, "X-GitHub-Event")
        delivery = _header(headers, "X-GitHub-Delivery")
    elif forge == "gitlab":
        event = "push" if payload.get("object_kind") == "push" else \
            str(payload.get("object_kind") or _header(headers, "X-Gitlab-Event"))
        delivery = _header(headers, "Idempotency-Key") or _header(headers, "X-Gitlab-Event-UUID")
    else:
        event = _header(headers, "X-Gitea-Event") or _header(headers, "X-Forgejo-Event")
        delivery = _header(headers, "X-Gitea-Delivery") or _header(headers, "X-Forgejo-Delivery")
    return Delivery(forge, event, delivery or None, payload)


def _sha(payload: dict, key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or len(value) not in (40, 64) \
            or any(c not in "0123456789abcdef" for c in value):
        raise WebhookError(f"payload.{key}: expected a full commit sha, got {value!r}")
    return value


def _person(who: object) -> str:
    if not isinstance(who, dict):
        return ""
    return f"{who.get('name', '')} <{who.get('email', '')}>"


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def change_for(delivery: Delivery, repository: str, project: str) -> dict | None:
    """The change record of a push delivery (the post-receive hook's shape), or None when
    nothing is to be built (not a push, a tag, a deleted branch)."""
    if delivery.event != "push":
        return None
    payload = delivery.payload
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise WebhookError("payload.ref: expected a string")
    update = RefUpdate(_sha(payload, "before"), _sha(payload, "after"), ref)
    if update.branch is None or update.is_deletion or payload.get("deleted") is True:
        return None
    commits = [c for c in payload.get("commits") or [] if isinstance(c, dict)]
    if delivery.forge == "gitlab":
        commits.reverse()  # GitLab lists the newest first; the hook's order is oldest first
    head = next((c for c in commits if c.get("id") == update.new),
                payload.get("head_commit") or (commits[-1] if commits else {}))
    total = payload.get("total_commits_count", len(commits))
    files = sorted({f for c in commits for key in ("added", "modified", "removed")
                    for f in c.get(key) or [] if isinstance(f, str)})
    forced = payload.get("forced") is True
    base = "" if update.is_creation or forced else update.old
    return {
        "revision": update.new,
        "branch": update.branch,
        "author": _person(head.get("author")),
        "committer": _person(head.get("committer") or head.get("author")),
        "comments": str(head.get("message") or ""),
        "when_timestamp": _timestamp(head.get("timestamp")),
        "files": files,
        "repository": repository,
        "project": project,
        "category": "push",
        "properties": {
            "greenlight_old": "" if update.is_creation else update.old,
            "greenlight_new": update.new,
            "greenlight_base": base,
            "greenlight_commits": [str(c.get("id")) for c in commits],
            "greenlight_commits_complete": isinstance(total, int) and total <= len(commits),
            "greenlight_forced": forced,
            "greenlight_push_id": delivery.delivery_id or push_id(update),
            "greenlight_forge": delivery.forge,
        },
    }
