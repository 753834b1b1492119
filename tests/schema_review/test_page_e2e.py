"""End to end on a real master: a risky migration stops the verify build, the schema page lists
it, only a schema reviewer may decide (with the page's CSRF token, from this very origin), and
approving the commit's last flagged statement rebuilds it green. The tests run in order and share
one World (starting a master costs ~10-20 s)."""
from __future__ import annotations

import html
import re

import pytest
import requests

from schema_review.approvals import ApprovalStore
from tests.conftest import wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

PAGE = "plugins/wsgi_dashboards/greenlight/schema/"
MIGRATION = "migrations/0003_users_indexes.sql"
MARKUP_STATEMENT = ("ALTER TABLE users ADD INDEX idx_users_name_created (name, created_at) "
                    "COMMENT '<script>alert(\"stmt\")</script>'")
PLAIN_STATEMENT = "CREATE INDEX idx_users_created ON users (created_at)"
SUBJECT = "index users for the admin search <img src=x onerror=alert('msg')>"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("schema-world"), workers=1)
    world.up()
    yield world
    world.down()


@pytest.fixture(scope="module")
def risky(world, tmp_path_factory):
    """One push adding two index builds on the large ``users`` table (the demo's sizes file)."""
    clone = world.clone(tmp_path_factory.mktemp("schema-clone") / "c")
    (clone / MIGRATION).write_text(f"-- admin search\n{MARKUP_STATEMENT};\n{PLAIN_STATEMENT};\n")
    sha = commit_all(clone, SUBJECT)
    push = world.push(clone, "main")
    assert push.returncode == 0, push.stderr
    build = world.wait_build(sha)
    return {"clone": clone, "sha": sha, "build": build}


def page_url(world: World, suffix: str = "") -> str:
    return world.url + PAGE + suffix


def rows_by_statement(text: str) -> dict[str, str]:
    """statement (as shown, still escaped) -> finding key, from the page's table."""
    rows = re.findall(r'<tr id="finding-([0-9a-f]+)".*?<pre class="statement">(.*?)</pre>',
                      text, re.DOTALL)
    return {statement: key for key, statement in rows}


def csrf_of(text: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
    assert match, "the page offers no form with a CSRF token"
    return match.group(1)


def step(world: World, build: dict, name: str) -> dict:
    steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
    return next(s for s in steps if s["name"] == name)


def wait_new_build(world: World, sha: str, after: int, timeout: float = 240) -> dict:
    """The first complete verify build of ``sha`` with an id above ``after`` (a rebuild)."""
    newer = wait_for(lambda: [b for b in world.builds_for(sha)
                              if b["buildid"] > after and b["complete"]],
                     timeout, f"a new build of {sha[:10]} after build {after}", interval=0.5)
    return newer[0]


def verify_requests(world: World) -> int:
    """How many verify build requests the master holds: a rebuild adds one before the page
    answers, so a count taken after the answer shows whether it started one."""
    builder = world.builder_id("verify")
    return len(world.api(f"builders/{builder}/buildrequests")["buildrequests"])


def log_text(world: World, step_info: dict, name: str) -> str:
    logs = world.api(f"steps/{step_info['stepid']}/logs")["logs"]
    log = next(entry for entry in logs if entry["name"] == name)
    return world.rest_get(f"logs/{log['logid']}/raw").text


def test_risky_push_stops_the_build_with_the_safe_alternative(world, risky):
    build = risky["build"]
    assert build["results"] == 2
    assert "needs schema review: 2 statement(s)" in build["state_string"]
    names = [s["name"] for s in world.api(f"builds/{build['buildid']}/steps")["steps"]]
    assert "tests" not in names  # fail fast: nothing after the schema gate ran
    assert world.builds_for(risky["sha"], "deploy") == []  # the deploy is stopped
    text = log_text(world, step(world, build, "schema review"), "schema review")
    assert "safe alternative:" in text and "gh-ost" in text and "pt-online-schema-change" in text


def test_page_lists_findings_with_everything_escaped(world, risky):
    response = requests.get(page_url(world), timeout=10)  # anonymous users may read
    assert response.status_code == 200
    text = response.text
    rows = rows_by_statement(text)
    assert PLAIN_STATEMENT in rows
    assert len(rows) == 2
    assert f"{MIGRATION}:2" in text and f"{MIGRATION}:3" in text
    assert risky["sha"][:12] in text and "Ada Author" in text
    assert "~5,000,000 rows" in text and "gh-ost" in text and "reads the whole table" in text
    # markup from the statement and the commit message is shown, never interpreted
    assert "<script>alert" not in text and "<img src=x" not in text
    shown = html.unescape(text)  # the escaped text reads as the original (any entity style)
    assert "COMMENT '<script>alert(\"stmt\")</script>'" in shown
    assert "<img src=x onerror=alert('msg')>" in shown
    assert "&lt;script&gt;alert(" in text and "&lt;img src=x onerror=alert(" in text
    assert 'name="csrf"' not in text  # nothing to act with when anonymous
    store = ApprovalStore(world.settings.expand(world.settings["schema"]["approvals_url"]))
    recorded = {item["statement"]: item for item in store.list_pending()}
    assert recorded[PLAIN_STATEMENT]["author"] == "Ada Author <ada@example.com>"
    assert recorded[PLAIN_STATEMENT]["commit"] == risky["sha"]


def test_anonymous_post_is_401(world, risky):
    key = rows_by_statement(requests.get(page_url(world), timeout=10).text)[PLAIN_STATEMENT]
    response = requests.post(page_url(world, "decide"), timeout=10,
                             data={"key": key, "decision": "approve", "csrf": "x"})
    assert response.status_code == 401


def test_non_reviewer_gets_403_even_with_a_valid_token(world, risky):
    dev = world.login("dev")
    text = dev.get(page_url(world), timeout=10).text
    assert "disabled" in text and "only the role schema-reviewers may decide" in text
    key = rows_by_statement(text)[PLAIN_STATEMENT]
    response = dev.post(page_url(world, "decide"), timeout=10,
                        data={"key": key, "decision": "approve", "csrf": csrf_of(text)})
    assert response.status_code == 403
    assert "needs the role schema-reviewers" in response.text
    assert "pending" in dev.get(page_url(world), timeout=10).text


def test_forged_cross_site_posts_are_refused(world, risky):
    admin = world.login("admin")
    text = admin.get(page_url(world), timeout=10).text
    key = rows_by_statement(text)[PLAIN_STATEMENT]
    token = csrf_of(text)
    dev_token = csrf_of(world.login("dev").get(page_url(world), timeout=10).text)
    form = {"key": key, "decision": "approve"}
    forged = [
        ({**form}, {}),                                        # no token (a foreign page)
        ({**form, "csrf": "0" * 64}, {}),                      # a guessed token
        ({**form, "csrf": dev_token}, {}),                     # another user's token
        ({**form, "csrf": token}, {"Origin": "http://evil.example"}),   # right token, foreign site
        ({**form, "csrf": token}, {"Referer": "http://evil.example/x"}),
    ]
    for data, headers in forged:
        response = admin.post(page_url(world, "decide"), data=data, headers=headers, timeout=10)
        assert response.status_code == 403, (data, headers, response.status_code)
        assert "cross-site request refused" in response.text
    listed = admin.get(page_url(world), timeout=10).text
    assert key in rows_by_statement(listed).values()  # still pending: nothing was approved
    assert len(world.builds_for(risky["sha"])) == 1


def test_reviewer_approves_and_the_commit_rebuilds_green(world, risky):
    admin = world.login("admin")
    text = admin.get(page_url(world), timeout=10).text
    rows = rows_by_statement(text)
    plain_key = rows[PLAIN_STATEMENT]
    markup_key = next(k for s, k in rows.items() if s != PLAIN_STATEMENT)
    origin = world.url.rstrip("/")
    requests_before = verify_requests(world)
    first = admin.post(page_url(world, "decide"), timeout=10,
                       headers={"Accept": "application/json", "Origin": origin},
                       data={"key": markup_key, "decision": "approve", "csrf": csrf_of(text),
                             "comment": "small <b>index</b>, off-peak"})
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["decision"] == "approved" and result["user"] == "admin"
    assert result["rebuild"]["rebuilt"] is False
    assert result["rebuild"]["waiting"] == [plain_key]  # one statement of the commit still waits
    assert verify_requests(world) == requests_before
    assert len(world.builds_for(risky["sha"])) == 1

    # the last one, through the HTML form like a browser (Referer of this very page)
    second = admin.post(page_url(world, "decide"), timeout=10,
                        headers={"Referer": page_url(world)},
                        data={"key": plain_key, "decision": "approve", "csrf": csrf_of(text),
                              "comment": "ok"})
    assert second.status_code == 200
    assert 'id="rebuild-started"' in second.text
    rebuilt = wait_new_build(world, risky["sha"], risky["build"]["buildid"])
    schema = step(world, rebuilt, "schema review")
    assert schema["results"] == 0 and "(2 approved)" in schema["state_string"]
    assert rebuilt["results"] == 0, rebuilt["state_string"]
    assert step(world, rebuilt, "tests")["results"] == 0
    # Green now, so on a world with hosts the deploy would go ahead (this world has none:
    # tests/deploy/test_buildbot_e2e.py proves green → deploy; here the gate is what matters).

    pending = requests.get(page_url(world), timeout=10).text
    assert rows_by_statement(pending) == {}
    everything = requests.get(page_url(world, "?all=1"), timeout=10).text
    assert "approved by admin" in everything
    assert "small &lt;b&gt;index&lt;/b&gt;, off-peak" in everything
    # approving again does not start a second rebuild of the same build
    requests_before = verify_requests(world)
    again = admin.post(page_url(world, "decide"), timeout=10,
                       headers={"Accept": "application/json"},
                       data={"key": plain_key, "decision": "approve", "csrf": csrf_of(text)})
    assert again.json()["rebuild"]["rebuilt"] is False
    assert verify_requests(world) == requests_before
    assert len(world.builds_for(risky["sha"])) == 2


def test_edited_statement_needs_a_new_approval(world, risky):
    clone = risky["clone"]
    (clone / MIGRATION).write_text(
        f"-- admin search\n{MARKUP_STATEMENT};\n"
        "CREATE INDEX idx_users_created ON users (created_at, id);\n")
    sha = commit_all(clone, "index users.created_at with id")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha)
    assert build["results"] == 2
    assert "needs schema review: 1 statement(s)" in build["state_string"]  # the other kept its
    rows = rows_by_statement(requests.get(page_url(world), timeout=10).text)
    assert list(rows) == ["CREATE INDEX idx_users_created ON users (created_at, id)"]
    admin = world.login("admin")
    text = admin.get(page_url(world), timeout=10).text
    requests_before = verify_requests(world)
    reject = admin.post(page_url(world, "decide"), timeout=10,
                        headers={"Accept": "application/json"},
                        data={"key": next(iter(rows.values())), "decision": "reject",
                              "csrf": csrf_of(text), "comment": "use gh-ost"})
    assert reject.status_code == 200 and reject.json()["decision"] == "rejected"
    assert reject.json()["rebuild"]["rebuilt"] is False
    still = requests.get(page_url(world), timeout=10).text
    assert "rejected by admin" in still and "use gh-ost" in still
    assert verify_requests(world) == requests_before
    assert len(world.builds_for(sha)) == 1
