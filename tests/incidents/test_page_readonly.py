"""The incidents list in Flask's test client (no master): a GET only reads; the judge's rollbacks
become incidents by the deploy's step or an authenticated POST with a CSRF token."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from greenlight.accounts import set_password
from greenlight.deploy.ledger import Ledger
from greenlight.incidents import IncidentStore
from greenlight.settings import validate
from greenlight.www.dashboard import make_app

URL = "/incidents/"


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


@pytest.fixture
def setup(tmp_path, make_repo):
    repo = make_repo("shop")
    repo.write("app/logic.py", "value = 1\n")
    sha = repo.commit("base")
    settings = validate({"greenlight": {"state_dir": str(tmp_path)},
                         "repository": {"url": str(repo.path)}})
    for user in ("admin", "dev", "viewer"):
        set_password(settings.path("auth", "password_file"), user, f"pw-{user}")
    ledger = Ledger(settings.expand(settings["deploy"]["ledger_url"]))
    at = datetime.now(timezone.utc) - timedelta(minutes=30)
    deploy = ledger.start_deploy(sha, None, hosts=["web1"], at=at)
    ledger.record_host_release("web1", sha, deploy, at=at)
    ledger.finish_deploy(deploy, "rolled_back", at=at + timedelta(minutes=2))
    ledger.record_incident(f"judge failed the canary of {sha[:12]}", deploy_id=deploy, sha=sha,
                           at=at + timedelta(minutes=1))
    client = make_app(settings, session_secret=lambda: "test-secret").test_client()
    yield client, ledger, IncidentStore(engine=ledger.engine), sha
    ledger.close()


def test_a_page_view_writes_nothing_and_says_what_waits(setup):
    client, ledger, store, _ = setup
    page = client.get(URL)
    assert page.status_code == 200
    assert "1 rollback(s) of the deploy judge wait" in page.text
    assert "Report them now" not in page.text               # anonymous: no form
    assert client.get(URL, headers=basic("admin")).status_code == 200
    assert store.list() == []                               # nothing ingested by the GETs
    assert [r.status for r in ledger.incidents()] == ["open"]


def test_reporting_rollbacks_needs_a_role_and_a_token(setup):
    client, ledger, store, sha = setup
    assert client.post(URL + "rollbacks").status_code == 401
    assert client.post(URL + "rollbacks", headers=basic("viewer")).status_code == 403
    page = client.get(URL, headers=basic("dev")).text
    assert "Report them now" in page
    assert client.post(URL + "rollbacks", headers=basic("dev")).status_code == 403   # no token
    assert store.list() == []
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    done = client.post(URL + "rollbacks", data={"csrf": token}, headers=basic("dev"))
    assert done.status_code == 303
    [incident] = store.list()
    assert incident.source == "rollback" and sha[:12] in incident.title
    assert [r.status for r in ledger.incidents()] == ["reported"]
    after = client.get(URL).text
    assert "wait for their" not in after and f"<code>{sha[:12]}</code>" in after
