"""The forges' webhook endpoints: ``POST /plugins/wsgi_dashboards/greenlight/webhooks/<forge>``
for ``github``, ``gitlab`` and ``gitea`` (Forgejo sends Gitea's headers too).

Each request is checked against ``[webhooks] secret_file`` the way its forge signs (a bad or
missing signature: 401, logged in the master's log), mapped by ``greenlight.push.webhooks`` to
the change records the post-receive hook makes, and submitted to Buildbot unless the master
already holds its push id (a redelivery: 200 "duplicate"). Buildbot's own ``/change_hook``
sits behind the post-receive hook's Basic credentials, which forges do not send; this
endpoint authenticates each request by its signature instead (so it skips the CSRF check).
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, jsonify, request
from twisted.python import log as twisted_log

from greenlight.push import webhooks
from greenlight.www import dashboard
from greenlight.www.change_hook import submit_changes

MAX_BODY = 25 << 20   # GitHub caps payloads at 25 MB
log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)


def _answer(status: int, **body) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _secret() -> bytes:
    path = g.settings["webhooks"]["secret_file"]
    if not path:
        return b""
    return g.settings.path("webhooks", "secret_file").read_bytes().strip()


def _refuse(forge: str, exc: Exception) -> Response:
    message = f"webhook {forge} from {request.remote_addr} refused: {exc}"
    log.warning("%s", message)
    twisted_log.msg(message)   # the master's twistd.log
    return _answer(401, error=str(exc))


@blueprint.route("/<forge>", methods=["POST"])
@dashboard.csrf_exempt
def receive(forge: str) -> Response:
    if forge not in webhooks.FORGES:
        return _answer(404, error=f"unknown forge {forge!r}; use one of "
                                  f"{', '.join(webhooks.FORGES)}")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _answer(413, error=f"body over {MAX_BODY} bytes")
    headers = dict(request.headers)
    try:
        webhooks.verify(forge, headers, body, _secret())
    except webhooks.BadSignature as exc:
        return _refuse(forge, exc)
    try:
        delivery = webhooks.parse(forge, headers, body)
        change = webhooks.change_for(delivery, g.settings.repo_url,
                                     g.settings["repository"]["name"])
    except webhooks.WebhookError as exc:
        return _answer(400, error=str(exc))
    if change is None:
        return _answer(200, ignored=f"{delivery.event or 'unnamed'} event: nothing to build")
    push_id = change["properties"]["greenlight_push_id"]  # read first: Buildbot takes the dict
    added = dashboard.buildbot_call(current_app, submit_changes, [change], forge)
    if not added:
        return _answer(200, duplicate=push_id)
    return _answer(202, revision=change["revision"], branch=change["branch"], push_id=push_id)
