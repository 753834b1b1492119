"""The Experiments page on a real master, and the issue's "Done means" on the real demo shop.

One World (master + worker), shared with two other modules (tests.conftest.SHARED_WORLD_MODULES).
The demo shop runs as its own process with the
project's python and $GREENLIGHT_EXPERIMENTS_DB pointing at the world's store, exactly like a
demo host: the page changes the state, the shop picks it up within seconds.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from greenlight.experiments import Experiment, ExperimentStore, report, results, set_qa
from tests.conftest import ROOT, free_port, scaled, wait_for
from tests.world import World

pytestmark = pytest.mark.e2e

PAGES = "plugins/wsgi_dashboards/greenlight/experiments"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def world(shared_world):
    return shared_world


@pytest.fixture(scope="module")
def store_url(world):
    return world.settings.expand(world.settings["experiments"]["db_url"])


@pytest.fixture(scope="module")
def store(store_url):
    the_store = ExperimentStore(store_url)
    yield the_store
    the_store.dispose()


def url(world: World, *parts: str) -> str:
    return "/".join([world.url + PAGES, *parts]) + "/"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def act(world: World, session: requests.Session, name: str, action: str, **form):
    """Post a form of the experiment's page the way a browser would (token from the page)."""
    page = session.get(url(world, name), timeout=30)
    assert page.status_code == 200, page.text
    return session.post(url(world, name, action), data={"csrf": csrf_of(page.text), **form},
                        headers={"Origin": world.url.rstrip("/")}, timeout=60)


def row_of(page: str, name: str) -> str:
    match = re.search(rf'<tr id="experiment-{re.escape(name)}">.*?</tr>', page, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def test_up_defines_the_demo_experiment_at_qa_only(world, store):
    demo = store.get("DemoSignup")
    assert demo.status == "qa" and demo.branches == {"enhanced": 0.5}
    assert demo.updated_by == "greenlight-up"
    listing = requests.get(url(world), timeout=30)      # anyone may read
    assert listing.status_code == 200
    row = row_of(listing.text, "DemoSignup")
    assert "QA and admins only" in row and "in QA (not counted)" in row
    assert "everyone else sees control and is not counted" in row
    assert "Read-only" in listing.text
    cli = world.greenlight("experiment", "list")         # the CLI reads the same store
    assert "DemoSignup" in cli.stdout and "QA and admins only" in cli.stdout


def test_only_experimenters_change_and_cross_site_posts_are_refused(world, store):
    store.define(Experiment("PageGuard", {"enhanced": 0.5}), "setup")
    anonymous = requests.post(url(world, "PageGuard", "rollout"), data={"pct": "30"}, timeout=30)
    assert anonymous.status_code == 401
    for user in ("dev", "viewer"):
        session = world.login(user)
        page = session.get(url(world, "PageGuard"), timeout=30).text
        assert "disabled" in page and "Only the role experimenters" in page
        denied = act(world, session, "PageGuard", "rollout", pct="30")
        assert denied.status_code == 403 and "needs the role experimenters" in denied.text
    admin = world.login("admin")
    no_token = admin.post(url(world, "PageGuard", "rollout"), data={"pct": "30"}, timeout=30)
    assert no_token.status_code == 403
    token = csrf_of(admin.get(url(world, "PageGuard"), timeout=30).text)
    foreign = admin.post(url(world, "PageGuard", "rollout"), data={"pct": "30", "csrf": token},
                         headers={"Origin": "http://evil.example"}, timeout=30)
    assert foreign.status_code == 403
    assert store.get("PageGuard").status == "qa"       # nothing above changed it

    before = time.time()
    done = act(world, admin, "PageGuard", "rollout", pct="30")
    assert done.status_code == 200 and done.history[0].status_code == 303
    assert "Rolled out to 30%" in done.text
    state = store.get("PageGuard")
    assert (state.status, state.rollout_pct, state.updated_by) == ("rollout", 30.0, "admin")
    change = store.history("PageGuard")[-1]
    assert (change.by, change.action) == ("admin", "rollout") and before <= change.at <= time.time()
    newest = re.search(r'<tr class="change">.*?</tr>', done.text, re.S).group(0)
    assert 'class="by">admin<' in newest and ">rollout<" in newest

    bad = act(world, admin, "PageGuard", "rollout", pct="150")
    assert bad.status_code == 400 and "0-100" in bad.text
    back = act(world, admin, "PageGuard", "qa", users="alice, bob", groups="qa")
    assert back.status_code == 200 and "2 listed users" in back.text
    assert store.get("PageGuard").qa_users == ("alice", "bob")
    closed = act(world, admin, "PageGuard", "close", branch="enhanced")
    assert closed.status_code == 200 and "Closed on enhanced" in closed.text
    final = admin.post(url(world, "PageGuard", "rollout"), timeout=30,
                       data={"pct": "10", "csrf": token}, headers={"Origin": world.url})
    assert final.status_code == 400 and "closing is final" in final.text
    assert store.get("PageGuard").status == "closed"
    assert [c.by for c in store.history("PageGuard")][-3:] == ["admin", "admin", "admin"]
    unknown = admin.post(url(world, "Nope", "close"), data={"branch": "x", "csrf": token},
                         headers={"Origin": world.url}, timeout=30)
    assert unknown.status_code == 404


def test_names_and_explanations_are_escaped(world, store):
    store.define(Experiment("Markup.Check", {"fancy": 0.5}), "setup")
    set_qa("Markup.Check", "<b>boss</b>", users=["<img src=x onerror=alert(1)>"],
           groups=[SCRIPT], store=store)
    store.write_exposures([("Markup.Check", f"m{i}", "fancy" if i % 2 else "control", 1.0)
                           for i in range(40)])
    store.write_events([(f"m{i}", "<i>clicks</i>", 1.0, 2.0) for i in range(0, 40, 3)])
    listing = requests.get(url(world), timeout=30).text
    page = requests.get(url(world, "Markup.Check"), timeout=30).text
    for text in (listing, page):
        assert SCRIPT not in text and "<b>boss</b>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;boss&lt;/b&gt;" in text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<i>clicks</i>" not in page and "&lt;i&gt;clicks&lt;/i&gt;" in page
    assert requests.get(url(world, "<script>"), timeout=30).status_code == 404


# --- Done means, on the demo shop ---------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(store_url, tmp_path_factory):
    """The demo shop served from a copy of examples/demo, as a demo host runs it."""
    source = tmp_path_factory.mktemp("shop")
    shutil.copytree(ROOT / "examples" / "demo" / "app", source / "app",
                    ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    env = {**os.environ, "GREENLIGHT_EXPERIMENTS_DB": store_url, "PYTHONDONTWRITEBYTECODE": "1"}
    log = open(source / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.server", "--port", str(port)],
                            cwd=source, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(base + "/health", timeout=scaled(1)).ok, 10,
                 "the demo shop to answer /health", interval=0.05,
                 retry_on=(requests.RequestException,))
    except AssertionError as exc:
        proc.kill()
        raise AssertionError(f"{exc}: {(source / 'server.log').read_text()}") from None
    yield Shop(base)
    proc.terminate()
    proc.wait(10)
    log.close()


class Shop:
    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def branch_seen(self, user: str) -> str:
        body = self.http.get(self.base + "/", params={"user": user}, timeout=10).text
        return re.search(r'data-branch="(\w+)"', body).group(1)

    def hit(self, path: str, user: str, **params) -> int:
        return self.http.get(self.base + path, params={"user": user, **params},
                             timeout=10).status_code


def flushed(store: ExperimentStore, shop: Shop, user: str) -> None:
    """A barrier: once a purchase ``user`` makes now is in the store, so is every exposure the
    shop queued before it (its client writes queued exposures, then queued events, in one
    flush). Nothing else may be in flight: it waits for exactly one more purchase."""
    before = _events(store, "purchase")
    assert shop.hit("/purchase", user, amount="1.00") == 200
    wait_for(lambda: _events(store, "purchase") == before + 1, 15,
             f"{user}'s purchase to reach the store")


def exposed(store: ExperimentStore) -> dict[str, int]:
    return store.exposure_counts("DemoSignup", None)


def test_done_means_qa_then_fifty_percent_then_results_then_closed(world, store, shop):
    admin = world.login("admin")
    # 1. at "QA and admins only" the feature is invisible to everybody else
    assert store.get("DemoSignup").status == "qa"
    assert {shop.branch_seen(f"user-{i}") for i in range(150)} == {"control"}
    qa_branches = {shop.branch_seen(f"qa-{i}") for i in range(30)}
    assert qa_branches == {"control", "enhanced"}          # QA users are assigned at random
    wait_for(lambda: sum(exposed(store).values()) == 30, 15, "30 QA exposures")

    # 2. raised to 50% on the page, traffic splits within seconds, without a deploy
    raised = act(world, admin, "DemoSignup", "rollout", pct="50")
    assert raised.status_code == 200 and "Rolled out to 50%" in raised.text
    probes = iter(range(10_000))
    wait_for(lambda: shop.branch_seen(f"probe-{next(probes)}") == "enhanced", 10,
             "the shop to follow the new rollout")
    seen = {f"user-{i}": shop.branch_seen(f"user-{i}") for i in range(600)}
    enhanced = [u for u, b in seen.items() if b == "enhanced"]
    assert 0.17 <= len(enhanced) / len(seen) <= 0.33       # 50% assigned × 50% enhanced

    # 3. users act: the enhanced banner converts far better; results show it with significance
    control_registered = [u for u, b in seen.items() if b == "control"][::3]
    for user in enhanced + control_registered:
        assert shop.hit("/register", user) in (200, 201)
        assert shop.hit("/purchase", user, amount="12.50") == 200
    wait_for(lambda: _converting(store, "registration", "enhanced") >= len(enhanced), 15,
             "the shop's registrations to reach the store")
    data = results("DemoSignup", store=store, metrics=["registration"])
    (metric,) = data["metrics"]
    rows = {row["branch"]: row for row in metric["branches"]}
    assert rows["enhanced"]["rate"] > 0.8 and rows["control"]["rate"] < 0.5  # QA, probes too
    assert rows["enhanced"]["vs_control"]["rate_significant"]
    assert not data["srm"]["mismatch"]
    page = admin.get(url(world, "DemoSignup"), timeout=60).text
    assert '<div id="results">' in page and "Rolled out to 50%" in page
    reg_rows = re.findall(r"<tr><td>registration</td><td>(\w+)</td>.*?</tr>", page, re.S)
    assert reg_rows == ["control", "enhanced"]
    enhanced_row = re.search(r"<tr><td>registration</td><td>enhanced</td>.*?</tr>", page,
                             re.S).group(0)
    assert f"{rows['enhanced']['rate'] * 100:.2f}%" in enhanced_row and "rate up" in enhanced_row
    assert "<td>purchase</td>" in page

    # 3b. the report breaks it down by the demo's two buckets, from attributes and logins
    for user in enhanced[:20]:
        assert shop.hit("/login", user, platform="client") == 200
    wait_for(lambda: sum(_bucket_users(store, "logged_into_client").values()) >= 20, 15,
             "client logins to reach the store")
    data = report("DemoSignup", store=store)
    assert [b["name"] for b in data["buckets"]] == ["all", "logged_into_client", "women"]
    everyone = data["buckets"][0]
    assert [a["name"] for a in everyone["attributes"]] == ["gender", "age_band", "platform"]
    assert 0 < sum(data["buckets"][2]["users"].values()) < sum(everyone["users"].values())
    report_page = admin.get(url(world, "DemoSignup", "report"), timeout=60).text
    assert 'id="bucket-logged_into_client"' in report_page and 'id="bucket-women"' in report_page

    # 4. closed on the winner: everybody gets it, nobody is assigned any more
    closed = act(world, admin, "DemoSignup", "close", branch="enhanced")
    assert closed.status_code == 200 and "Closed on enhanced" in closed.text
    # at 50% a new user sees enhanced one time in four: 20 in a row means the close arrived
    wait_for(lambda: all(shop.branch_seen(f"late-{next(probes)}") == "enhanced"
                         for _ in range(20)), 10, "the shop to follow the close")
    flushed(store, shop, enhanced[0])        # the exposures of the requests before the close
    before = sum(exposed(store).values())
    assert {shop.branch_seen(f"new-{i}") for i in range(200)} == {"enhanced"}
    assert all(shop.branch_seen(u) == "enhanced" for u in list(seen)[:100])
    flushed(store, shop, enhanced[0])        # whatever these 300 requests queued
    assert sum(exposed(store).values()) == before
    listing = requests.get(url(world), timeout=30).text
    assert "closed: enhanced launched" in row_of(listing, "DemoSignup")


def _bucket_users(store: ExperimentStore, bucket: str) -> dict[str, int]:
    data = report("DemoSignup", store=store, bucket_names=[bucket])
    return data["buckets"][-1]["users"]


def _events(store: ExperimentStore, metric: str) -> int:
    return sum(a.events for a in store.metric_aggregates("DemoSignup", [metric]))


def _converting(store: ExperimentStore, metric: str, branch: str) -> int:
    data = results("DemoSignup", store=store, metrics=[metric])
    for row in (data["metrics"][0]["branches"] if data["metrics"] else []):
        if row["branch"] == branch:
            return row["converting"]
    return 0


def test_demo_hosts_of_the_world_get_its_store(world, store_url, tmp_path):
    """A demo host under the world's state_dir gets $GREENLIGHT_EXPERIMENTS_DB; one
    elsewhere gets none (its shop then serves control and records nothing)."""
    env = {k: v for k, v in world.env.items() if k != "GREENLIGHT_EXPERIMENTS_DB"}
    probe = ("from greenlight.deploy.demo_hosts import experiments_env as e; import sys; "
             "print(e(sys.argv[1]).get('GREENLIGHT_EXPERIMENTS_DB', ''))")
    inside = world.settings.state_dir / "hosts" / "host-01"
    for host, expected in ((inside, store_url), (tmp_path / "hosts" / "x", "")):
        out = subprocess.run([sys.executable, "-c", probe, str(host)], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == expected
    assert Path(store_url.removeprefix("sqlite:///")).is_file()
