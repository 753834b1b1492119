"""The incidents pages and the intake webhook on a real master (the World shared with
two other modules: tests.conftest.SHARED_WORLD_MODULES)."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from greenlight.deploy.ledger import Ledger
from tests.conftest import git
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

PAGES = "plugins/wsgi_dashboards/greenlight/incidents"
MARKUP = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def master(shared_world):
    return shared_world


@pytest.fixture(scope="module")
def ledger(master):
    the_ledger = Ledger(master.settings.expand(master.settings["deploy"]["ledger_url"]))
    yield the_ledger
    the_ledger.close()


def url(world: World, path: str = "") -> str:
    return f"{world.url}{PAGES}/{path}"


def intake(world: World, user: str | None = "dev", **kwargs) -> requests.Response:
    auth = (user, world.credentials()[user]) if user else None
    return requests.post(url(world, "intake"), auth=auth, timeout=30, **kwargs)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"   # Alertmanager sends nanoseconds


def alertmanager_body(starts: datetime, summary: str) -> dict:
    """A webhook exactly as Alertmanager (version 4) sends it for one firing alert."""
    labels = {"alertname": "LoginRateDrop", "service": "demo", "severity": "page"}
    return {
        "version": "4", "groupKey": '{}:{alertname="LoginRateDrop"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "greenlight",
        "groupLabels": {"alertname": "LoginRateDrop"}, "commonLabels": labels,
        "commonAnnotations": {"summary": summary}, "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": summary},
                    "startsAt": iso(starts), "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28x%29",
                    "fingerprint": "6f2c1b0e4a7d9c31"}],
    }


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


@pytest.fixture(scope="module")
def markup_incident(master, ledger, tmp_path_factory):
    """A pushed commit whose message carries markup, deployed, then an incident tracing into it."""
    clone = master.clone(tmp_path_factory.mktemp("clone") / "c")
    git(clone, "checkout", "-q", "-b", "incident-markup")      # not a watched branch: no build
    base = git(clone, "rev-parse", "HEAD")
    (clone / "app" / "markup_demo.py").write_text("def ratio(a, b):\n    return a / b\n")
    sha = commit_all(clone, f"{MARKUP} speed up ratio & <b>friends</b>")
    push = master.push(clone, "incident-markup")
    assert push.returncode == 0, push.stderr
    now = datetime.now(timezone.utc)
    deploy = ledger.start_deploy(sha, base, hosts=["web1"], at=now - timedelta(minutes=10))
    ledger.record_host_release("web1", sha, deploy, at=now - timedelta(minutes=9))
    ledger.finish_deploy(deploy, "success", at=now - timedelta(minutes=8))
    trace = ("Traceback (most recent call last):\n"
             '  File "/srv/demo/releases/current/app/markup_demo.py", line 2, in ratio\n'
             "    return a / b\nZeroDivisionError: division by zero\n")
    response = intake(master, json={"title": "ratio explodes", "service": "demo",
                                    "started_at": (now - timedelta(minutes=1)).isoformat(),
                                    "trace": trace})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["suspects"][0] == sha
    return {"id": answer["id"], "sha": sha, "base": base, "deploy": deploy}


def test_alertmanager_webhook_with_credentials_is_stored_and_listed(master):
    starts = datetime.now(timezone.utc) - timedelta(minutes=3)
    body = alertmanager_body(starts, "logins dropped 60% <i>now</i>")
    first = intake(master, "dev", json=body)
    assert first.status_code == 201, first.text
    incident_id = first.json()["id"]
    again = intake(master, "dev", json=body)              # Alertmanager's repeat_interval
    assert again.status_code == 200 and again.json() == {
        "id": incident_id, "url": f"/{PAGES}/{incident_id}", "duplicate": True}
    later = intake(master, "admin", json={"title": "checkout errors", "started_at": "now"})
    assert later.status_code == 201, later.text             # admin holds the role deployers

    listing = requests.get(url(master), timeout=30)
    assert listing.status_code == 200
    page = listing.text
    row = re.search(rf'<tr id="incident-{incident_id}">.*?</tr>', page, re.S).group(0)
    assert "LoginRateDrop: logins dropped 60% &lt;i&gt;now&lt;/i&gt;" in row
    assert "alertmanager" in row and "demo" in row
    assert page.count(f'<tr id="incident-{incident_id}">') == 1
    newer = page.index(f'<tr id="incident-{later.json()["id"]}">')
    assert newer < page.index(f'<tr id="incident-{incident_id}">')   # newest first


def test_unauthenticated_or_unentitled_post_is_refused(master):
    title = f"should-not-exist-{uuid.uuid4().hex[:8]}"
    body = {"title": title, "started_at": "now"}
    anonymous = intake(master, None, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = requests.post(url(master, "intake"), json=body, auth=("dev", "wrong"), timeout=30)
    assert wrong.status_code == 401
    assert intake(master, "viewer", json=body).status_code == 403
    session = master.login("dev")         # a browser session is not a webhook's credential
    assert session.post(url(master, "intake"), json=body, timeout=30).status_code == 401
    cross_site = intake(master, "dev", json=body, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert title not in requests.get(url(master), timeout=30).text


def test_garbage_body_gets_400_with_the_reason(master):
    garbage = intake(master, data=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    assert "body is not JSON" in garbage.json()["error"]
    odd = intake(master, json={"alerts": [{"labels": {"alertname": "X"}}]})
    assert odd.status_code == 400 and "startsAt" in odd.json()["error"]
    form = intake(master, json={"title": "no start"})
    assert form.status_code == 400 and "started_at" in form.json()["error"]


def test_incident_page_escapes_commit_markup_and_links_the_lines(master, markup_incident):
    sha, incident_id = markup_incident["sha"], markup_incident["id"]
    response = requests.get(url(master, str(incident_id)), timeout=30)
    assert response.status_code == 200
    page = response.text
    assert MARKUP not in page and "<b>friends" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; speed up ratio &amp; &lt;b&gt;friends" in page
    suspects = page[page.index("<h2>Suspects</h2>"):page.index("<h2>Deploy timeline</h2>")]
    assert sha[:12] in suspects.split("</li>")[0]        # the traced commit ranks first
    blame = f"/{PAGES}/git/blame/{sha}/app/markup_demo.py#L2"
    assert f'href="{blame}"' in page
    assert f'href="/{PAGES}/git/compare/{markup_incident["base"]}...{sha}"' in page
    blamed = requests.get(master.url + blame.lstrip("/").split("#")[0], timeout=30)
    assert blamed.status_code == 200 and 'id="L2"' in blamed.text
    assert "return a / b" in blamed.text
    shown = requests.get(url(master, f"git/commit/{sha}"), timeout=30)
    assert shown.status_code == 200 and MARKUP not in shown.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert requests.get(url(master, "git/commit/--output=x"), timeout=30).status_code == 404
    report = requests.get(url(master, f"{incident_id}.json"), timeout=30).json()
    assert report["suspects"][0]["sha"] == sha
    assert report["five_whys"][0]["answer"].startswith("ratio explodes")


def test_five_whys_save_for_engineers_only_and_with_csrf(master, markup_incident):
    page_url = url(master, str(markup_incident["id"]))
    whys_url = url(master, f"{markup_incident['id']}/whys")
    dev = master.login("dev")
    page = dev.get(page_url, timeout=30).text
    assert f'action="/{PAGES}/{markup_incident["id"]}/whys"' in page
    assert "ratio explodes" in page                           # why #1 prefilled with the alert
    token = csrf_of(page)
    answers = {"why1": "ratio divides by zero", "why2": "b <i>can</i> be 0", "csrf": token}
    saved = dev.post(whys_url, data=answers, timeout=30, allow_redirects=False)
    assert saved.status_code == 303, saved.text
    shown = dev.get(page_url, timeout=30).text
    assert "b &lt;i&gt;can&lt;/i&gt; be 0" in shown and "b <i>can" not in shown

    viewer = master.login("viewer")
    viewer_page = viewer.get(page_url, timeout=30).text
    assert 'disabled title="needs the role engineers"' in viewer_page
    denied = viewer.post(whys_url, data={"why2": "viewer wrote this",
                                         "csrf": csrf_of(viewer_page)}, timeout=30)
    assert denied.status_code == 403 and "engineers" in denied.text
    no_token = dev.post(whys_url, data={"why2": "no token wrote this"}, timeout=30)
    assert no_token.status_code == 403
    anonymous = requests.post(whys_url, data={"why2": "anonymous", "csrf": token}, timeout=30)
    assert anonymous.status_code == 401
    after = requests.get(page_url, timeout=30).text
    assert "b &lt;i&gt;can&lt;/i&gt; be 0" in after
    assert "viewer wrote this" not in after and "no token wrote this" not in after


def test_judge_rollback_appears_as_an_incident_naming_the_commit(master, ledger,
                                                                 markup_incident):
    sha = markup_incident["sha"]
    failed_at = datetime.now(timezone.utc) - timedelta(minutes=5)
    ledger.record_event(markup_incident["deploy"], "judge", data={"outcome": "fail"},
                        at=failed_at)
    title = f"judge failed the canary of {sha[:12]}"
    ledger.record_incident(title, deploy_id=markup_incident["deploy"], sha=sha, at=failed_at)
    waiting = requests.get(url(master), timeout=30).text    # an anonymous view only reads
    assert title not in waiting and "wait" in waiting
    dev = master.login("dev")
    listing = dev.get(url(master), timeout=30).text
    assert dev.post(url(master, "rollbacks"), data={"csrf": csrf_of(listing)}, timeout=30,
                    allow_redirects=False).status_code == 303
    page = requests.get(url(master), timeout=30).text
    row = next(r for r in re.findall(r"<tr id=\"incident-\d+\">.*?</tr>", page, re.S)
               if title in r)
    assert "rollback" in row and f"<code>{sha[:12]}</code>" in row
    again = requests.get(url(master), timeout=30).text          # reported once only
    assert again.count(title) == 1
