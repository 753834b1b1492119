"""The experiment results and incident pages in Chromium: an experiment whose users and events
the client library recorded into a real store, an incident correlated with a real ledger and
git repository. The charts carry the expected series, rows and points, nothing is wider than
the window (the menu included), and each page is screenshot at 1280 px and at phone width.

Screenshots: ``var/test-artifacts/www-pages/`` (or $GREENLIGHT_TEST_ARTIFACTS).
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from greenlight import settings as settings_mod
from greenlight.deploy.ledger import Ledger
from greenlight.experiments import ROLLOUT, Experiment, ExperimentClient, ExperimentStore, results
from greenlight.experiments.timeline import READS
from greenlight.incidents import IncidentStore
from greenlight.incidents.model import Incident
from greenlight.www.dashboard import MOUNT
from tests.conftest import ROOT, Repo, wait_for
from tests.browser import Browser, serve_pages  # skips without Chromium

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("GREENLIGHT_TEST_ARTIFACTS")
                 or ROOT / "var" / "test-artifacts" / "www-pages")
USERS_PER_WAVE = 400
WAVES = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Settings naming a real git repository, ledger and experiments store."""
    tmp = tmp_path_factory.mktemp("www")
    (tmp / "shop").mkdir()
    repo = Repo(tmp / "shop")
    path = tmp / "settings.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp / "state"}"\n\n'
                    f'[repository]\nurl = "{repo.path}"\n')
    (tmp / "state").mkdir()
    settings = settings_mod.load(str(path))
    return {"tmp": tmp, "repo": repo, "settings": settings}


@pytest.fixture(scope="module")
def experiment(world):
    """Checkout: control and two branches, users arriving in three waves through the client
    library; 'fast' converts more often and spends more."""
    url = world["settings"].expand(world["settings"]["experiments"]["db_url"])
    client = ExperimentClient(url, refresh_seconds=0.2, flush_seconds=0.2)
    store = ExperimentStore(url)
    try:
        client.define(Experiment("Checkout", {"fast": 1 / 3, "cheap": 1 / 3},
                                 status=ROLLOUT, rollout_pct=100))
        wait_for(lambda: client.state("Checkout") is not None
                 and client.state("Checkout").rollout_pct == 100, 30, "the client to see it")
        for wave in range(WAVES):
            for i in range(USERS_PER_WAVE):
                user = f"user-{wave}-{i}"
                branch = client.branch_for(user, "Checkout")
                if i % (3 if branch == "fast" else 5) == 0:
                    client.record_event(user, "purchase", 20.0 if branch == "fast" else 10.0)
                if i % 2 == 0:
                    client.record_event(user, "login")
            client.flush()
            recorded = (wave + 1) * USERS_PER_WAVE
            wait_for(lambda: sum(store.exposure_counts("Checkout").values()) == recorded, 60,
                     f"{recorded} exposures in the store")
            span = store.exposure_span("Checkout")
            wait_for(lambda: time.time() > span[1] + 1.0, 10, "a second to pass")  # waves apart
    finally:
        client.close()
    yield {"store": store, "results": results("Checkout", store=store)}
    store.dispose()


@pytest.fixture(scope="module")
def incident(world):
    """Three deploys of the shop (the last rolled back), then an incident whose trace points
    at a line the second one shipped, with a judge's evidence table wider than a phone."""
    repo = world["repo"]
    repo.write("shop/pay.py", "def total(a, b):\n    return a + b\n")
    first = repo.commit("shop: totals")
    repo.write("shop/pay.py", "def total(a, b):\n    return a / b\n")
    second = repo.commit("pay: divide the <b>total</b> (breaks it)")
    repo.write("NOTES", "notes\n")
    third = repo.commit("notes")
    ledger = Ledger(world["settings"].expand(world["settings"]["deploy"]["ledger_url"]))
    now = datetime.now(timezone.utc)
    ids = []
    for sha, previous, minutes, outcome in ((first, None, 50, "success"),
                                             (second, first, 30, "success"),
                                             (third, second, 12, "rolled_back")):
        at = now - timedelta(minutes=minutes)
        deploy = ledger.start_deploy(sha, previous, hosts=["web1", "web2"], at=at)
        for host in ("web1", "web2"):
            ledger.record_host_release(host, sha, deploy, at=at + timedelta(minutes=1))
        ledger.finish_deploy(deploy, outcome, at=at + timedelta(minutes=2))
        ids.append(deploy)
    wide = "  ".join(f"metric_{i}_per_request_on_canary_vs_baseline" for i in range(8))
    store = IncidentStore(engine=ledger.engine)
    incident_id = store.save(Incident(
        title="checkout totals explode", started_at=now - timedelta(minutes=5),
        source="cli", service="shop",
        trace=("Traceback (most recent call last):\n"
               '  File "/srv/shop/releases/current/shop/pay.py", line 2, in total\n'
               "    return a / b\nZeroDivisionError: division by zero\n"),
        evidence={"table": wide + "\n" + "0.1  " * 60}))
    yield {"id": incident_id, "deploys": ids, "suspect": second}
    ledger.close()


@pytest.fixture(scope="module")
def site(world):
    server = serve_pages(world["settings"])
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    browser = Browser(tmp / "profile", tmp / "chromedriver.log")
    yield browser
    browser.quit()


def _shoot(browser, name: str) -> list[Path]:
    """Screenshots at 1280 px and at phone width; nothing on the page (the menu included)
    reaches past the window's right edge, except inside a box that scrolls by itself."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for label, width in (("1280", 1280), ("phone", 390)):
        browser.resize(width, 900)
        height = browser.script("return Math.min(document.documentElement.scrollHeight, 7000)")
        browser.resize(width, max(900, int(height) + 140))
        wide = browser.script("""
            const w = document.documentElement.clientWidth;
            const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) {
              const s = getComputedStyle(p).overflowX;
              if ((s === 'auto' || s === 'scroll') && p !== document.documentElement
                  && p !== document.body) return true; } return false; };
            return [...document.body.querySelectorAll('*')].filter(e =>
              e.getBoundingClientRect().right > w + 2 && !scrolls(e)
              && !e.closest('details:not([open])')).slice(0, 8).map(e =>
              e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
            """)
        assert wide == [], f"{name} is wider than {width} px: {wide}"
        assert browser.script("return document.documentElement.scrollWidth") <= width
        shots.append(browser.screenshot(ARTIFACTS / f"{name}-{label}.png"))
    browser.resize(1280, 900)
    return shots


def _figures(browser) -> dict:
    return {f["id"]: f for f in browser.script("""
        return [...document.querySelectorAll('figure.gl-figure')].map(f => ({
          id: f.id,
          series: [...f.querySelectorAll('g.series')].map(g => ({
            name: g.dataset.name, points: +g.dataset.points})),
          bands: f.querySelectorAll('polygon.band').length,
          rows: [...f.querySelectorAll('g.forest-row, g.share-row')].map(g => ({
            branch: g.dataset.branch, sig: g.classList.contains('sig'),
            av: g.querySelectorAll('rect.av').length, fx: g.querySelectorAll('rect.fx').length,
            dots: g.querySelectorAll('circle.est').length,
            observed: g.querySelector('rect.observed') ?
              +g.querySelector('rect.observed').getAttribute('width') : null,
            expected: g.querySelector('rect.expected') ?
              +g.querySelector('rect.expected').getAttribute('width') : null})),
          markers: [...f.querySelectorAll('a.marker')].map(a => ({
            href: a.getAttribute('href'), label: a.dataset.label,
            css: a.getAttribute('class'), title: a.querySelector('title').textContent})),
          alt: f.querySelector('svg').getAttribute('aria-label'),
          table: f.querySelectorAll('details tr').length}));""")}


def test_experiment_results_draw_forest_over_time_and_sample_ratio(experiment, site, browser):
    data = experiment["results"]
    browser.open(f"{site}{MOUNT}/experiments/Checkout/")
    browser.find("#experiment-charts")
    figures = _figures(browser)
    srm = figures["srm"]
    assert [r["branch"] for r in srm["rows"]] == list(data["exposed"])
    assert all(r["observed"] > 0 and r["expected"] > 0 for r in srm["rows"])
    assert srm["table"] == 1 + len(data["exposed"]) and "expected" in srm["alt"]
    metrics = [m["metric"] for m in data["metrics"]]
    assert metrics == ["login", "purchase"]
    treated = [b for b in data["exposed"] if b != "control"]
    for i, name in enumerate(metrics):
        kinds = ["rate", "mean"] if name == "purchase" else ["rate"]  # purchases carry values
        assert (f"forest-{i}-mean" in figures) == (name == "purchase")
        for kind in kinds:
            forest = figures[f"forest-{i}-{kind}"]
            assert [r["branch"] for r in forest["rows"]] == treated
            assert all((r["av"], r["fx"], r["dots"]) == (1, 1, 1) for r in forest["rows"])
            assert forest["table"] == 1 + len(treated)
            over_time = figures[f"cumulative-{i}-{kind}"]
            assert [s["name"] for s in over_time["series"]] == [*treated, "no difference"]
            assert all(s["points"] == READS for s in over_time["series"][:-1])
            assert over_time["bands"] == len(treated)
            assert over_time["table"] == READS + 1
    purchase = next(m for m in data["metrics"] if m["metric"] == "purchase")
    fast = next(r for r in purchase["branches"] if r["branch"] == "fast")["vs_control"]
    drawn = next(r for r in figures["forest-1-mean"]["rows"] if r["branch"] == "fast")
    assert drawn["sig"] == fast["mean_significant"]
    assert browser.find("#results table")  # the table stays, below the charts
    assert browser.script("return document.querySelector('#experiment-charts')"
                            ".compareDocumentPosition(document.querySelector('#results')) & 4")
    _shoot(browser, "experiment-results")


def test_incident_page_draws_its_timeline_and_wraps_its_evidence(incident, site, browser):
    browser.open(f"{site}{MOUNT}/incidents/{incident['id']}")
    browser.find("#incident-timeline")
    timeline = _figures(browser)["incident-timeline"]
    by_css = {}
    for m in timeline["markers"]:
        by_css.setdefault(m["css"].split("marker-")[-1], []).append(m)
    assert [m["href"] for m in by_css["deploy"]] == [
        f"{MOUNT}/deploys/{d}" for d in incident["deploys"][:2]]
    assert [m["href"] for m in by_css["rollback"]] == [f"{MOUNT}/deploys/{incident['deploys'][2]}"]
    assert len(by_css["incident"]) == 1
    assert "checkout totals explode" in by_css["incident"][0]["title"]
    top = next(m for m in by_css["suspect"] if m["label"] == "suspect 1")
    assert incident["suspect"][:12] in top["title"], [m["title"] for m in by_css["suspect"]]
    assert "<b>total</b>" in top["title"]  # a commit's markup is text, never markup
    assert timeline["table"] == len(timeline["markers"]) + 1
    evidence = browser.script("const p = document.querySelector('.incident-report pre'); "
                                "return p && [getComputedStyle(p).whiteSpace, p.scrollWidth <= "
                                "p.clientWidth, p.textContent.length]")
    assert evidence and evidence[:2] == ["pre-wrap", True], browser.source()[-3000:]
    assert evidence[2] > 600  # the judge's whole table, wrapped rather than cut
    _shoot(browser, "incident")


def test_every_page_menu_wraps_on_a_phone(experiment, incident, site, browser):
    for page in ("schema/", "deploys/", "trending/", "incidents/", "experiments/",
                 "flaky/"):
        browser.open(f"{site}{MOUNT}/{page}")
        browser.find("body > nav")
        browser.resize(390, 900)
        assert browser.script("return document.documentElement.scrollWidth") <= 390, page
        assert browser.script("return getComputedStyle(document.querySelector('body > nav'))"
                                ".flexWrap") == "wrap"
    _shoot(browser, "experiments-list")


def test_the_menu_entry_keeps_every_page_inside_its_frame(experiment, site, browser):
    """Buildbot's UI injects index.html into its own page: a fragment (no document of its
    own, no global style) whose frame shows the pages, their menu moving within it."""
    browser.open(f"{site}{MOUNT}/index.html")
    browser.find("iframe[name=greenlight-page]")
    assert browser.script("return [...document.querySelectorAll('style')].map(s => "
                            "s.textContent.split('}').every(r => !r.trim() || "
                            "r.trim().startsWith('.greenlight-shell')))") == [True]
    frame = "document.querySelector('iframe').contentDocument"
    wait_for(lambda: browser.script(f"return !!{frame}.querySelector('body > nav')"), 30,
             "the first page in the frame")
    assert browser.script(f"return {frame}.querySelector('body > nav a').target") == "_top"
    browser.script(f"[...{frame}.querySelectorAll('body > nav a')].find(a => "
                     "a.textContent === 'Experiments').click()")
    wait_for(lambda: browser.script(f"const d = {frame}; return d.location.pathname"
                                      ".endsWith('/experiments/') && "
                                      "!!d.querySelector('#experiments')"), 30,
             "the experiments list in the frame")
    assert browser.url().endswith("/index.html")  # the outer page (Buildbot's) stays
    _shoot(browser, "menu-entry")
