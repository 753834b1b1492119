"""Forge webhooks mapped to the post-receive hook's change records: payloads shaped as GitHub,
GitLab and Gitea document them, each forge's signature, refusals."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from greenlight.push import webhooks
from greenlight.push.changes import RefUpdate, push_id

SECRET = b"s3cret-shared-with-the-forge"
BEFORE, AFTER, MID = "17c497ccc7cca9c2f735aa07e9e3813060ce9a6a", \
    "1481a2de7b2a7d02428ad93446ab166be7793fbb", "c441029cf673f84c8b7db52d0a5944ee5c52ff89"
ZERO = "0" * 40


def github_payload(before=BEFORE, after=AFTER, forced=False, ref="refs/heads/main") -> dict:
    """The shape of GitHub's ``push`` event (docs: webhook-events-and-payloads#push)."""
    person = {"name": "Garen Torikian", "email": "lolwut@noway.biz", "username": "octokitty"}
    return {
        "ref": ref, "before": before, "after": after, "created": before == ZERO,
        "deleted": after == ZERO, "forced": forced, "base_ref": None,
        "compare": f"https://github.com/octokitty/testing/compare/{before[:12]}...{after[:12]}",
        "commits": [
            {"id": MID, "tree_id": "f" * 40, "distinct": True, "message": "Test",
             "timestamp": "2013-02-22T13:50:07-08:00", "url": "https://github.com/x/y/commit/1",
             "author": person, "committer": person, "added": [], "removed": [],
             "modified": ["README.md"]},
            {"id": after, "tree_id": "e" * 40, "distinct": True,
             "message": "This is me testing the windows client.",
             "timestamp": "2013-02-22T14:07:13-08:00", "url": "https://github.com/x/y/commit/2",
             "author": person, "committer": person, "added": ["docs/new.md"],
             "removed": ["old.txt"], "modified": ["README.md"]},
        ],
        "head_commit": {"id": after, "message": "This is me testing the windows client.",
                        "timestamp": "2013-02-22T14:07:13-08:00", "author": person,
                        "committer": person},
        "repository": {"full_name": "octokitty/testing",
                       "clone_url": "https://github.com/octokitty/testing.git"},
        "pusher": {"name": "octokitty", "email": "lolwut@noway.biz"},
    }


def gitlab_payload(before=BEFORE, after=AFTER) -> dict:
    """The shape of GitLab's push hook (docs: webhook_events#push-events): newest commit first."""
    return {
        "object_kind": "push", "event_name": "push", "before": before, "after": after,
        "ref": "refs/heads/main", "checkout_sha": after, "user_name": "John Smith",
        "user_username": "jsmith", "user_email": "john@example.com", "project_id": 15,
        "project": {"name": "Diaspora", "path_with_namespace": "mike/diaspora",
                    "git_http_url": "http://example.com/mike/diaspora.git"},
        "commits": [
            {"id": after, "message": "fixed readme", "title": "fixed readme",
             "timestamp": "2012-01-03T23:36:29+02:00", "url": "http://example.com/c/2",
             "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
             "added": ["CHANGELOG"], "modified": ["app/controller/application.rb"],
             "removed": []},
            {"id": MID, "message": "Update Catalan translation to e38cb41.",
             "title": "Update Catalan translation", "timestamp": "2011-12-12T14:27:31+02:00",
             "url": "http://example.com/c/1",
             "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
             "added": [], "modified": ["locale/ca.po"], "removed": []},
        ],
        "total_commits_count": 2,
        "repository": {"name": "Diaspora", "url": "git@example.com:mike/diaspora.git"},
    }


def gitea_payload(before=BEFORE, after=AFTER) -> dict:
    """The shape of Gitea's push event (docs.gitea.com/usage/webhooks)."""
    person = {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"}
    return {
        "ref": "refs/heads/main", "before": before, "after": after,
        "compare_url": f"http://localhost:3000/gitea/webhooks/compare/{before}...{after}",
        "commits": [{"id": after, "message": "Webhooks Yay!",
                     "url": f"http://localhost:3000/gitea/webhooks/commit/{after}",
                     "author": person, "committer": person,
                     "timestamp": "2017-03-13T13:52:11-04:00", "added": [], "removed": [],
                     "modified": ["README.md"]}],
        "head_commit": None,
        "repository": {"id": 140, "full_name": "gitea/webhooks"},
        "pusher": {"id": 1, "login": "gitea"}, "sender": {"id": 1, "login": "gitea"},
    }


def signed(forge: str, payload: dict, secret: bytes = SECRET, delivery: str = "d-1"
           ) -> tuple[dict, bytes]:
    """(headers, body) as the forge sends them."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if forge == "github":
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                   "X-Hub-Signature-256": f"sha256={digest}"}
    elif forge == "gitlab":
        headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret.decode(),
                   "X-Gitlab-Event-UUID": delivery}
    else:
        headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": delivery,
                   "X-Gitea-Signature": digest, "X-GitHub-Event": "push"}
    return {**headers, "Content-Type": "application/json"}, body


def change(forge: str, payload: dict, delivery: str = "d-1") -> dict | None:
    headers, body = signed(forge, payload, delivery=delivery)
    webhooks.verify(forge, headers, body, SECRET)
    return webhooks.change_for(webhooks.parse(forge, headers, body), "/srv/repo.git", "shop")


@pytest.mark.parametrize("forge,payload", [("github", github_payload()),
                                           ("gitlab", gitlab_payload()),
                                           ("gitea", gitea_payload())])
def test_a_push_maps_to_the_hooks_change_record(forge, payload):
    record = change(forge, payload)
    assert record["revision"] == AFTER and record["branch"] == "main"
    assert record["repository"] == "/srv/repo.git" and record["project"] == "shop"
    assert record["category"] == "push"
    props = record["properties"]
    assert props["greenlight_base"] == BEFORE and props["greenlight_old"] == BEFORE
    assert props["greenlight_new"] == AFTER and props["greenlight_forced"] is False
    assert props["greenlight_push_id"] == "d-1" and props["greenlight_forge"] == forge
    assert props["greenlight_commits"][-1] == AFTER   # oldest first, as the hook lists them
    assert props["greenlight_commits_complete"] is True
    # the same keys as the post-receive hook's records, plus the forge's name
    assert set(props) - {"greenlight_forge", "greenlight_commits_complete"} == {
        "greenlight_old", "greenlight_new", "greenlight_base", "greenlight_commits",
        "greenlight_forced", "greenlight_push_id"}


def test_files_author_and_time_come_from_the_commits():
    record = change("github", github_payload())
    assert record["files"] == ["README.md", "docs/new.md", "old.txt"]
    assert record["author"] == "Garen Torikian <lolwut@noway.biz>"
    assert record["comments"] == "This is me testing the windows client."
    assert record["when_timestamp"] == 1361570833.0
    lab = change("gitlab", gitlab_payload())
    assert lab["properties"]["greenlight_commits"] == [MID, AFTER]
    assert lab["author"] == "GitLab dev user <gitlabdev@dv6700.(none)>"
    assert lab["files"] == ["CHANGELOG", "app/controller/application.rb", "locale/ca.po"]


def test_new_branch_and_force_push_have_no_base_deletions_and_tags_nothing():
    created = change("github", github_payload(before=ZERO))["properties"]
    assert created["greenlight_base"] == "" and created["greenlight_old"] == ""
    forced = change("github", github_payload(forced=True))["properties"]
    assert forced["greenlight_forced"] is True and forced["greenlight_base"] == ""
    assert change("github", github_payload(after=ZERO)) is None
    assert change("github", github_payload(ref="refs/tags/v1")) is None
    assert change("gitea", gitea_payload(after=ZERO)) is None


def test_a_truncated_commit_list_is_said_not_hidden():
    payload = gitlab_payload()
    payload["total_commits_count"] = 25
    assert change("gitlab", payload)["properties"]["greenlight_commits_complete"] is False


def test_without_a_delivery_id_the_push_id_is_the_hooks():
    headers, body = signed("gitlab", gitlab_payload())
    del headers["X-Gitlab-Event-UUID"]
    record = webhooks.change_for(webhooks.parse("gitlab", headers, body), "r", "p")
    assert record["properties"]["greenlight_push_id"] == push_id(
        RefUpdate(BEFORE, AFTER, "refs/heads/main"))


@pytest.mark.parametrize("forge", ["github", "gitlab", "gitea"])
def test_a_wrong_or_missing_signature_is_refused(forge):
    headers, body = signed(forge, github_payload(), secret=b"not-the-secret")
    with pytest.raises(webhooks.BadSignature, match="does not match"):
        webhooks.verify(forge, headers, body, SECRET)
    headers, body = signed(forge, github_payload())
    with pytest.raises(webhooks.BadSignature):   # the body changed after signing
        webhooks.verify(forge if forge != "gitlab" else "github", headers, body + b" ", SECRET)
    bare = {k: v for k, v in headers.items() if "Signature" not in k and "Token" not in k}
    with pytest.raises(webhooks.BadSignature, match="missing"):
        webhooks.verify(forge, bare, body, SECRET)
    with pytest.raises(webhooks.BadSignature, match="no webhook secret"):
        webhooks.verify(forge, headers, body, b"")


def test_other_events_build_nothing_and_bad_payloads_say_what():
    headers, body = signed("github", {"zen": "Keep it logically awesome."})
    headers["X-GitHub-Event"] = "ping"
    assert webhooks.change_for(webhooks.parse("github", headers, body), "r", "p") is None
    headers, body = signed("github", {**github_payload(), "after": "nope"})
    with pytest.raises(webhooks.WebhookError, match="payload.after: expected a full commit"):
        webhooks.change_for(webhooks.parse("github", headers, body), "r", "p")
    with pytest.raises(webhooks.WebhookError, match="not JSON"):
        webhooks.parse("github", headers, b"{")
