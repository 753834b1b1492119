"""End to end on a real master: a signed GitHub, GitLab and Gitea push webhook each becomes the
change the post-receive hook would have sent, the GitHub one is built green, a redelivery is
dropped, and a request with a bad signature is refused with 401 and logged."""
from __future__ import annotations

import pytest
import requests

from tests.conftest import git
from tests.push.test_webhooks import gitea_payload, github_payload, gitlab_payload, signed
from tests.world import SHARED_WEBHOOK_SECRET, commit_all

pytestmark = pytest.mark.e2e
SECRET = SHARED_WEBHOOK_SECRET


@pytest.fixture(scope="module")
def world(shared_world):
    """The shared world (tests.conftest.SHARED_WORLD_MODULES), its webhooks signed with SECRET."""
    return shared_world


def land_without_hook(world, clone, message: str) -> tuple[str, str]:
    """A commit on the bare repository's main that no server hook announced: (before, after)."""
    before = git(world.bare, "rev-parse", "refs/heads/main")
    (clone / "NOTES.md").write_text(f"{message}\n")
    after = commit_all(clone, message)
    git(world.bare, "fetch", "-q", str(clone), "+main:main")
    return before, after


def post(world, forge: str, payload: dict, delivery: str, secret: bytes = SECRET):
    headers, body = signed(forge, payload, secret=secret, delivery=delivery)
    return requests.post(f"{world.url}plugins/wsgi_dashboards/greenlight/webhooks/{forge}",
                         data=body, headers=headers, timeout=30)


def test_github_push_is_built_once_and_a_forgery_is_refused(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    before, after = land_without_hook(world, clone, "from GitHub")
    payload = github_payload(before=before, after=after)
    forged = post(world, "github", payload, "delivery-1", secret=b"guess")
    assert forged.status_code == 401 and "does not match" in forged.json()["error"]
    assert world.changes_for(after) == []
    answer = post(world, "github", payload, "delivery-1")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"revision": after, "branch": "main", "push_id": "delivery-1"}
    again = post(world, "github", payload, "delivery-1")   # GitHub's "Redeliver"
    assert again.status_code == 200 and again.json() == {"duplicate": "delivery-1"}
    [change] = world.changes_for(after)
    props = {k: v[0] for k, v in change["properties"].items()}
    assert props["greenlight_base"] == before and props["greenlight_forge"] == "github"
    assert props["greenlight_push_id"] == "delivery-1"
    build = world.wait_build(after)
    assert build["results"] == 0, build["state_string"]
    log = (world.settings.path("master", "basedir") / "twistd.log").read_text()
    assert "webhook github from 127.0.0.1 refused: github: X-Hub-Signature-256 does not match" \
        in log


@pytest.mark.parametrize("forge,make", [("gitlab", gitlab_payload), ("gitea", gitea_payload)])
def test_gitlab_and_gitea_pushes_become_changes(world, tmp_path, forge, make):
    clone = world.clone(tmp_path / "c")
    before, after = land_without_hook(world, clone, f"from {forge}")
    answer = post(world, forge, make(before=before, after=after), f"{forge}-1")
    assert answer.status_code == 202, answer.text
    [change] = world.changes_for(after)
    assert change["branch"] == "main"
    props = {k: v[0] for k, v in change["properties"].items()}
    assert props["greenlight_forge"] == forge and props["greenlight_base"] == before
    assert post(world, forge, make(before=before, after=after), "other-id",
                secret=b"wrong").status_code == 401
