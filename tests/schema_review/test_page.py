"""The schema page in Flask's own test client (fast: no master): what each role sees and may
do, escaping, input checks, and the pure decision of whether a commit may be rebuilt. The same
behaviours over a real master are in test_page_e2e.py."""
from __future__ import annotations

import base64
import re

import pytest
from greenlight.accounts import set_password
from greenlight.www import schema_page
from greenlight.www.dashboard import make_app
from greenlight.settings import validate

from schema_review.approvals import ApprovalStore
from tests.schema_review.helpers import review

URL = "/schema/"
STATEMENT = "ALTER TABLE users ADD INDEX idx_note (name) COMMENT '<script>alert(1)</script>'"


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


@pytest.fixture
def page(tmp_path):
    settings = validate({"greenlight": {"state_dir": str(tmp_path)}})
    for user in ("admin", "dev", "viewer"):
        set_password(settings.path("auth", "password_file"), user, f"pw-{user}")
    report = review(f"{STATEMENT};\nCREATE INDEX idx_c ON users (n);\n", "mariadb",
                    path="migrations/0003_<b>.sql")
    store = ApprovalStore(settings.expand(settings["schema"]["approvals_url"]))
    assert store.record_pending(report.needs_review, repo="demo", commit="c0ffee" * 6 + "ab",
                                author="Eve <eve@x> <i>") == 2
    app = make_app(settings, session_secret=lambda: "test-secret")
    return app.test_client(), store


def keys_on(text: str) -> list[str]:
    return re.findall(r'<tr id="finding-([0-9a-f]+)"', text)


def token_on(text: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)


def test_anonymous_reads_escaped_findings_without_forms(page):
    client, _ = page
    text = client.get(URL).get_data(as_text=True)
    assert len(keys_on(text)) == 2
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "migrations/0003_&lt;b&gt;.sql:1" in text and "Eve &lt;eve@x&gt; &lt;i&gt;" in text
    assert "~5,000,000 rows" in text and "gh-ost" in text
    assert "<form" not in text and "log in as a schema reviewer" in text


def test_reviewer_gets_live_buttons_others_disabled_ones(page):
    client, _ = page
    admin = client.get(URL, headers=basic("admin")).get_data(as_text=True)
    dev = client.get(URL, headers=basic("dev")).get_data(as_text=True)
    assert admin.count('value="approve">Approve') == 2 and "disabled" not in admin
    assert dev.count("disabled title=") == 4 and token_on(dev) != token_on(admin)


def test_only_schema_reviewers_may_decide(page):
    client, store = page
    key = keys_on(client.get(URL).get_data(as_text=True))[0]
    form = {"key": key, "decision": "approve"}
    assert client.post(URL + "decide", data=form).status_code == 401
    for user in ("dev", "viewer"):
        token = token_on(client.get(URL, headers=basic(user)).get_data(as_text=True))
        denied = client.post(URL + "decide", data={**form, "csrf": token}, headers=basic(user))
        assert denied.status_code == 403 and b"needs the role schema-reviewers" in denied.data
    assert store.decision(key) is None


def test_reviewer_decides_with_token_and_same_origin_only(page):
    client, store = page
    text = client.get(URL, headers=basic("admin")).get_data(as_text=True)
    key, other = keys_on(text)
    form = {"key": key, "decision": "approve", "csrf": token_on(text), "comment": "<ok>"}
    foreign = client.post(URL + "decide", data=form,
                          headers={**basic("admin"), "Origin": "http://evil.example"})
    assert foreign.status_code == 403 and store.decision(key) is None
    done = client.post(URL + "decide", data=form,
                       headers={**basic("admin"), "Accept": "application/json"})
    assert done.status_code == 200
    result = done.get_json()
    assert result["decision"] == "approved" and result["user"] == "admin"
    assert result["rebuild"] == {"rebuilt": False,
                                 "why": "not running inside the Buildbot master"}
    assert store.decision(key)["comment"] == "<ok>"
    after = client.get(URL).get_data(as_text=True)
    assert keys_on(after) == [other]  # approved ones leave the pending list
    everything = client.get(URL + "?all=1").get_data(as_text=True)
    assert "approved by admin" in everything and "&lt;ok&gt;" in everything


@pytest.mark.parametrize("form, status", [
    ({"key": "", "decision": "approve"}, 400),
    ({"key": "k", "decision": "merge"}, 400),
    ({"key": "no-such-key", "decision": "reject"}, 404),
    ({"key": "k", "decision": "reject", "comment": "x" * 2001}, 400),
])
def test_bad_decisions_are_refused_with_a_reason(page, form, status):
    client, _ = page
    token = token_on(client.get(URL, headers=basic("admin")).get_data(as_text=True))
    response = client.post(URL + "decide", data={**form, "csrf": token}, headers=basic("admin"))
    assert response.status_code == status


def test_keys_awaiting_counts_only_unapproved_flagged_findings():
    flagged = [{"key": "a", "needs_review": True}, {"key": "a", "needs_review": True},
               {"key": "b", "needs_review": True}, {"key": "c", "needs_review": False},
               {"key": "d", "needs_review": True}]
    decisions = {"a": {"decision": "approved"}, "b": {"decision": "rejected"}, "d": None}
    assert schema_page.keys_awaiting(flagged, decisions) == ["b", "d"]
    assert schema_page.keys_awaiting(flagged[:2], decisions) == []


def test_size_text():
    assert schema_page.size_text({"rows": 5_000_000, "bytes": 2 << 30, "source": "file"}) == \
        "~5,000,000 rows, 2,048 MiB (file)"
    assert schema_page.size_text({"source": "new"}) == "new table (small)"
    assert schema_page.size_text(None) == "unknown"


def test_unreachable_approvals_database_is_a_clear_503(tmp_path):
    settings = validate({"greenlight": {"state_dir": str(tmp_path)},
                         "schema": {"approvals_url": "postgresql://nobody@127.0.0.1:1/none"}})
    client = make_app(settings, session_secret=lambda: "s").test_client()
    response = client.get(URL)
    assert response.status_code == 503
    assert b"cannot open the approvals database" in response.data
