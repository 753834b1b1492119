"""The deploy and trending pages in Chromium, on real deploys of the demo app with the real
judge and traffic: a deploy that passes, one the judge rolls back, one whose app does not
start. The charts carry the expected series and points, the markers link to the right
deploys, and each page is screenshot at 1280 px and at phone width.

Screenshots: ``var/test-artifacts/deploy-pages/`` (or $GREENLIGHT_TEST_ARTIFACTS).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from greenlight import settings as settings_mod
from greenlight.cli.main import main
from greenlight.deploy import demo_hosts as demo
from greenlight.deploy import story, trending
from greenlight.deploy.ledger import Ledger
from greenlight.deploy.traffic import generate_traffic
from greenlight.www.dashboard import MOUNT

from tests.conftest import free_ports, git, wait_for
from tests.browser import Browser, serve_pages  # skips without Chromium

from .conftest import ROOT_DIR
from .test_cli_demo import DEMO, write_settings

pytestmark = pytest.mark.e2e
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ARTIFACTS = Path(os.environ.get("GREENLIGHT_TEST_ARTIFACTS")
                 or ROOT_DIR / "var" / "test-artifacts" / "deploy-pages")


@pytest.fixture(scope="module")
def deploys(tmp_path_factory, request):
    """Real deploys on three demo hosts: v1 everywhere, v2 passes the judge, v3 breaks
    logins (rolled back by the judge), v4 does not start (rolled back, its log kept)."""
    tmp = tmp_path_factory.mktemp("pages")

    repo = tmp / "demo"
    repo.mkdir()
    shutil.copytree(DEMO, repo, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")

    def commit(message: str) -> str:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message)
        return git(repo, "rev-parse", "HEAD").strip()

    ports = free_ports(3)
    prometheus = start_prometheus(tmp, [f"127.0.0.1:{p}" for p in ports])
    request.addfinalizer(prometheus.stop)
    path = write_settings(tmp, repo, ports)
    path.write_text(path.read_text().replace("canary_fraction = 0.5", "canary_fraction = 0.3")
                    .replace('"--port", "{port}"]', '"--port", "{port}"]\nstart_log = "server.log"')
                    .replace('observe_seconds = 30', 'observe_seconds = 40\n'
                             'on_window_end = "pass"'))
    settings = str(path)
    stop = threading.Event()
    traffic = threading.Thread(target=generate_traffic, daemon=True, kwargs=dict(
        urls=[f"http://127.0.0.1:{p}" for p in ports], rate=60, duration_s=600,
        max_requests=200_000, seed=11, timeout=1.0, stop=stop))
    shas = {}
    try:
        shas["v1"] = commit("demo v1")
        assert main(["deploy", shas["v1"], "--settings", settings, "--json"]) == 0
        traffic.start()
        (repo / "NOTES").write_text("a harmless change\n")
        shas["v2"] = commit("notes: a harmless change <b>escaped</b>")
        assert main(["deploy", shas["v2"], "--settings", settings, "--json"]) == 0
        logic = repo / "app" / "logic.py"
        logic.write_text(logic.read_text().replace(
            "    def login(self, user: str) -> str:\n",
            "    def login(self, user: str) -> str:\n        raise UnknownUser(user)\n", 1))
        shas["v3"] = commit("refactor login (breaks it)")
        assert main(["deploy", shas["v3"], "--settings", settings, "--json"]) == 1
        server = repo / "app" / "server.py"
        server.write_text(server.read_text().replace(
            "    make_server(argv).serve_forever()",
            "    import no_such_module_x  # noqa: F401\n    make_server(argv).serve_forever()"))
        shas["v4"] = commit("server: start through a helper module")
        assert main(["deploy", shas["v4"], "--settings", settings, "--json"]) == 1
        # Prometheus has scraped the hosts through all of it (rates need two samples)
        wait_for(lambda: trending.query_range(
            prometheus.url, "sum(rate(demo_requests_total[1m]))", time.time() - 600,
            time.time(), 5), 120, "Prometheus to have request rates")
    finally:
        stop.set()
        traffic.join(30)
        for i in range(1, 4):
            demo.stop_host(tmp / f"web{i}")
    central = settings_mod.load(settings)
    # the same world with Prometheus set, for the trending page (the deploys above judged
    # by scraping the hosts directly, the default)
    with_prometheus = tmp / "with-prometheus.toml"
    with_prometheus.write_text(path.read_text().replace(
        "[deploy]\n", f'[deploy]\nprometheus_url = "{prometheus.url}"\n', 1))
    ledger = Ledger(f"sqlite:///{tmp / 'state'}/ledger.sqlite")
    records = {r.sha: r for r in ledger.list_deploys()}
    yield {"settings": central, "prometheus_settings": settings_mod.load(with_prometheus),
           "ledger": ledger, "shas": shas,
           "ids": {name: records[sha].id for name, sha in shas.items()}}


class _Prometheus:
    """A real Prometheus (Debian package) scraping the demo hosts every second."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url = proc, url

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_prometheus(tmp: Path, targets: list[str]) -> _Prometheus:
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus is installed by scripts/system-deps.sh")
    port = free_ports(1)[0]
    config = tmp / "prometheus.yml"
    listed = ", ".join(f"'{t}'" for t in targets)
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                      "scrape_configs:\n  - job_name: demo\n    static_configs:\n"
                      f"      - targets: [{listed}]\n")
    log = open(tmp / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    prometheus = _Prometheus(proc, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        try:
            return requests.get(prometheus.url + "/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, 120, "Prometheus to start")
    return prometheus


@pytest.fixture(scope="module")
def site(deploys):
    """The pages as Buildbot serves them (the same Flask app, under the same path)."""
    server = serve_pages(deploys["settings"])
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def prometheus_site(deploys):
    server = serve_pages(deploys["prometheus_settings"])
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    browser = Browser(tmp / "profile", tmp / "chromedriver.log")
    yield browser
    browser.quit()


def _shoot(browser, name: str) -> Path:
    """A screenshot at 1280 px and one at phone width; the page's content fits the width
    (wide tables scroll inside their own box)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, width in (("1280", 1280), ("phone", 390)):
        height = browser.script("return Math.min(document.documentElement.scrollHeight, 6000)")
        browser.resize(width, max(800, int(height) + 140))
        # this page's content (the shared menu above it is the layout's)
        wide = browser.script("const w = document.documentElement.clientWidth; return "
                              "[...document.querySelectorAll('.gl-page *')].filter(e => "
                              "e.getBoundingClientRect().right > w + 2 && "
                              "!e.closest('details:not([open]), .gl-table-wrap')).slice(0, 8)"
                              ".map(e => e.tagName + ' ' + "
                              "Math.round(e.getBoundingClientRect().right))")
        assert wide == [], f"{name} is wider than {width} px: {wide}"
        browser.screenshot(ARTIFACTS / f"{name}-{label}.png")
    browser.resize(1280, 900)
    return ARTIFACTS / f"{name}-1280.png"


def _charts(browser) -> list[dict]:
    return browser.script("""
        return [...document.querySelectorAll('figure.gl-line-chart')].map(f => ({
          id: f.id,
          series: [...f.querySelectorAll('g.series')].map(g => ({
            name: g.dataset.name, points: +g.dataset.points,
            path: g.querySelector('path').getAttribute('d').split('L').length})),
          bands: f.querySelectorAll('polygon.band').length,
          markers: [...f.querySelectorAll('a.marker')].map(a => ({
            href: a.getAttribute('href'), label: a.dataset.label,
            title: a.querySelector('title').textContent})),
          alt: f.querySelector('svg').getAttribute('aria-label'),
          rows: f.querySelectorAll('details tr').length}));""")


def test_passed_deploy_page_draws_each_metric_against_its_lines(deploys, site, browser):
    record = deploys["ledger"].deploy(deploys["ids"]["v2"])
    looks = len(story.judge_looks(record))
    browser.open(f"{site}{MOUNT}/deploys/{record.id}")
    verdict = browser.text(browser.find("#verdict"))
    assert verdict.startswith("shipped to all 3 hosts: the canary passed the judge"), verdict
    charts = _charts(browser)
    metrics = story.metric_tracks(record)
    assert len(charts) == 2 * len(metrics) >= 8
    for i, track in enumerate(metrics):
        values = next(c for c in charts if c["id"] == f"metric-{i}-values")
        assert [s["name"] for s in values["series"]] == ["canary", "baseline"]
        drawn = [k for k in track.looks if k.canary is not None]
        assert values["series"][0]["points"] == len(drawn) > 0
        if track.kind == "ratio":
            assert values["bands"] == 2
        llr = next(c for c in charts if c["id"] == f"metric-{i}-llr")
        assert [s["name"] for s in llr["series"]] == ["LLR", "fail line", "pass line"]
        assert all(s["points"] == looks for s in llr["series"])
        assert llr["alt"] and llr["rows"] == looks + 1  # the text alternative: every look
    assert browser.text(browser.find(".commits-shipped")).count("\n") == 0
    assert "a harmless change <b>escaped</b>" in browser.text(browser.find(".commits-shipped"))
    assert browser.find("figure.gl-gantt") and browser.find("#raw-judge")
    _shoot(browser, "deploy-passed")


def test_rolled_back_deploy_says_which_metric_decided_and_ships_nothing(deploys, site,
                                                                        browser):
    record = deploys["ledger"].deploy(deploys["ids"]["v3"])
    browser.open(f"{site}{MOUNT}/deploys/{record.id}")
    verdict = browser.text(browser.find("#verdict"))
    assert re.match(r"rolled back: logins per request [\d,]+/[\d,]+ on the canary vs "
                    r"[\d,]+/[\d,]+ on the baseline, decided after [\d.]+ s", verdict), verdict
    assert "Not shipped" in browser.text(browser.find("#not-shipped"))
    assert "refactor login" in browser.text(browser.find(".commits-not-shipped"))
    rows = browser.script("return document.querySelectorAll('figure.gl-gantt rect.bar')"
                            ".length")
    assert rows >= 2  # the canary's move and its rollback, in parts
    _shoot(browser, "deploy-rolled-back")


def test_deploy_whose_app_did_not_start_shows_its_log(deploys, site, browser):
    record = deploys["ledger"].deploy(deploys["ids"]["v4"])
    browser.open(f"{site}{MOUNT}/deploys/{record.id}")
    verdict = browser.text(browser.find("#verdict"))
    assert verdict == ("rolled back: canary web1 did not start: ModuleNotFoundError: No module "
                       "named 'no_such_module_x'"), verdict
    log = browser.text(browser.find("#start-failure pre"))
    assert "Traceback (most recent call last)" in log and "no_such_module_x" in log
    _shoot(browser, "deploy-did-not-start")


def test_trending_page_marks_every_deploy_and_links_to_it(deploys, site, browser):
    browser.open(f"{site}{MOUNT}/trending/?range=1h")
    assert "No Prometheus server" in browser.text(browser.find("#no-prometheus"))
    [timeline] = _charts(browser)
    ids = deploys["ids"]
    hrefs = {m["label"]: m["href"] for m in timeline["markers"]}
    for name in ("v1", "v2", "v3", "v4"):
        assert hrefs[f"#{ids[name]}"] == f"{MOUNT}/deploys/{ids[name]}"
    kinds = browser.script("return [...document.querySelectorAll('a.marker')].map(a => "
                             "a.getAttribute('class'))")
    assert kinds.count("marker marker-rollback") == 2 and kinds.count("marker marker-deploy") == 2
    assert kinds.count("marker marker-incident") == 2  # the two rollbacks' incident requests
    v3 = next(m for m in timeline["markers"] if m["label"] == f"#{ids['v3']}")
    assert "refactor login (breaks it)" in v3["title"]  # what a hover shows
    top = timeline["markers"][-1]
    browser.script(f"document.querySelector('a.marker[data-label=\"{top['label']}\"]')"
                     ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    browser.find("#verdict")  # the deploy page it links to
    assert browser.url().endswith(top["href"])
    browser.open(f"{site}{MOUNT}/trending/?range=1h")
    _shoot(browser, "trending-ledger-only")


def test_trending_page_draws_prometheus_metrics_with_the_deploys_on_them(deploys,
                                                                      prometheus_site,
                                                                      browser):
    browser.open(f"{prometheus_site}{MOUNT}/trending/?range=1h")
    browser.find("figure#trend-0")
    charts = {c["id"]: c for c in _charts(browser)}
    trends = [c for key, c in charts.items() if key.startswith("trend-")]
    assert len(trends) == len(trending.QUERIES)
    by_name = {c["series"][0]["name"]: c for c in trends}
    for name in ("logins per request", "requests per second", "error rate", "latency p95"):
        series = by_name[name]["series"][0]
        assert series["points"] > 0 and series["path"] == series["points"], name
    ids = deploys["ids"]
    for chart in trends:  # every chart carries every deploy
        labels = {m["label"]: m["href"] for m in chart["markers"]}
        for name in ("v1", "v2", "v3", "v4"):
            assert labels[f"#{ids[name]}"] == f"{MOUNT}/deploys/{ids[name]}"
    assert not browser.source().count("did not answer")
    _shoot(browser, "trending-prometheus")
