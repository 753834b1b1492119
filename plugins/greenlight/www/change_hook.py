"""The ``greenlight`` change-hook dialect: JSON changes from hooks/post-receive, built once.

POST /change_hook/greenlight with ``{"changes": [...]}`` (authenticated by Buildbot's
``change_hook_auth``). A change whose ``greenlight_push_id`` property the master already holds
is dropped: the hook may resend after a timeout, and a push must not be built twice.
"""
from __future__ import annotations

import json

from buildbot.data import resultspec
from twisted.internet import defer

REQUIRED = ("revision", "branch")
TEXT_FIELDS = ("revision", "branch", "author", "committer", "comments", "repository",
               "project", "category", "revlink")


def parse_body(body: bytes) -> list[dict]:
    """Validate the hook's JSON; ValueError (HTTP 400) says what is wrong."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("changes"), list):
        raise ValueError('expected {"changes": [ ... ]}')
    changes = []
    for index, change in enumerate(payload["changes"]):
        if not isinstance(change, dict):
            raise ValueError(f"changes[{index}]: expected an object")
        for field in REQUIRED:
            if not isinstance(change.get(field), str) or not change[field]:
                raise ValueError(f"changes[{index}].{field}: required string")
        clean = {f: change[f] for f in TEXT_FIELDS if isinstance(change.get(f), str)}
        files = change.get("files", [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError(f"changes[{index}].files: expected a list of strings")
        props = change.get("properties", {})
        if not isinstance(props, dict):
            raise ValueError(f"changes[{index}].properties: expected an object")
        when = change.get("when_timestamp")
        clean.update(files=files, properties=props,
                     when_timestamp=when if isinstance(when, (int, float)) else None)
        changes.append(clean)
    return changes


@defer.inlineCallbacks
def fresh_changes(master, changes: list[dict]):
    """The changes whose ``greenlight_push_id`` the master does not hold yet: a hook resends
    after a timeout, a forge redelivers, and a push must not be built twice."""
    fresh = []
    for change in changes:
        push_id = change["properties"].get("greenlight_push_id")
        if push_id and (yield _seen(master, change["revision"], push_id)):
            continue
        fresh.append(change)
    return fresh


@defer.inlineCallbacks
def _seen(master, revision: str, push_id: str):
    known = yield master.data.get(
        ("changes",), filters=[resultspec.Filter("revision", "eq", [revision])])
    for change in known or []:
        value = (change.get("properties") or {}).get("greenlight_push_id")
        if value and value[0] == push_id:
            return True
    return False


@defer.inlineCallbacks
def submit_changes(master, changes: list[dict], src: str):
    """Add the fresh ones of ``changes`` to the master (what Buildbot's change hook resource
    does for a dialect); returns how many were added."""
    fresh = yield fresh_changes(master, changes)
    for change in fresh:
        yield master.data.updates.addChange(src=src, **change)
    return len(fresh)


class GreenlightHookHandler:
    def __init__(self, master, options):
        self.master = master
        self.options = options

    @defer.inlineCallbacks
    def getChanges(self, request):
        changes = parse_body(request.content.read())
        fresh = yield fresh_changes(self.master, changes)
        return fresh, "greenlight"
