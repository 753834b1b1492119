"""A real browser clicks Approve: Debian's Chromium (headless) driven by chromedriver over the
W3C WebDriver protocol (plain HTTP with requests: no selenium needed), against a real master.

Chrome ignores credentials in URLs for Buildbot's /auth/login, so the test logs in with requests
and hands the session cookie to the browser; the click then goes through the page's own form,
CSRF token and Origin, exactly as a reviewer's would.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE = "plugins/wsgi_dashboards/greenlight/schema/"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip("Chromium and chromedriver are installed by scripts/system-deps.sh",
                allow_module_level=True)


class Browser:
    """The few WebDriver commands the test needs, each one HTTP request to chromedriver."""

    def __init__(self, profile: Path, log: Path):
        self.port = free_port()
        self.log = log.open("w")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
        created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{created['sessionId']}"

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/status", timeout=2).json()["value"]["ready"]:
                    return
            except (requests.ConnectionError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError("chromedriver did not start")

    def _call(self, method: str, path: str, body: dict | None = None):
        response = requests.request(method, self.base + path, json=body, timeout=60)
        value = response.json()["value"]
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {value}")
        return value

    def open(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def add_cookie(self, name: str, value: str) -> None:
        self._call("POST", f"{self.session}/cookie",
                   {"cookie": {"name": name, "value": value, "path": "/"}})

    def find(self, css: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            response = requests.post(self.base + f"{self.session}/element", timeout=30,
                                     json={"using": "css selector", "value": css})
            if response.status_code == 200:
                return response.json()["value"][ELEMENT]
            if time.monotonic() > deadline:
                raise AssertionError(f"no element {css!r} on {self.url()}: "
                                     f"{self.source()[:2000]}")
            time.sleep(0.2)

    def type_into(self, element: str, text: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/value", {"text": text})

    def click(self, element: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/click", {})

    def text(self, element: str) -> str:
        return self._call("GET", f"{self.session}/element/{element}/text")

    def url(self) -> str:
        return self._call("GET", f"{self.session}/url")

    def source(self) -> str:
        return self._call("GET", f"{self.session}/source")

    def quit(self) -> None:
        try:
            requests.delete(self.base + self.session, timeout=30)
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
            self.log.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("browser-world"))
    world.up()
    yield world
    world.down()


@pytest.fixture
def browser(tmp_path):
    browser = Browser(tmp_path / "profile", tmp_path / "chromedriver.log")
    yield browser
    browser.quit()


def test_reviewer_clicks_approve_and_the_rebuild_starts(world, browser, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "migrations" / "0003_users_created.sql").write_text(
        "CREATE INDEX idx_users_created ON users (created_at);\n")
    sha = commit_all(clone, "index users.created_at")
    assert world.push(clone, "main").returncode == 0
    stopped = world.wait_build(sha)
    assert "needs schema review" in stopped["state_string"]

    session = world.login("admin")
    cookies = {c.name: c.value for c in session.cookies}
    assert "TWISTED_SESSION" in cookies
    browser.open(world.url + PAGE)  # a cookie can only be set for the page's own origin
    for name, value in cookies.items():
        browser.add_cookie(name, value)
    browser.open(world.url + PAGE)
    row = 'tr[data-key] form.decide'
    assert "admin" in browser.text(browser.find("nav span"))
    browser.type_into(browser.find(f"{row} textarea[name=comment]"), "approved from Chromium")
    browser.click(browser.find(f'{row} button[value="approve"]'))

    started = browser.find("#rebuild-started")
    assert "rebuilding build" in browser.text(started)
    assert "approved by admin" in browser.text(browser.find("#decision"))
    wait_for(lambda: any(b["buildid"] > stopped["buildid"] for b in world.builds_for(sha)),
             120, "a rebuild of the approved commit in Buildbot's REST API", interval=0.25)
    everything = requests.get(world.url + PAGE + "?all=1", timeout=10).text
    assert "approved from Chromium" in everything
