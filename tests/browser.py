"""A real browser for the page tests: Debian's Chromium (headless) driven by chromedriver over
the W3C WebDriver protocol (plain HTTP with requests: no selenium needed), and the Greenlight
pages served as the master serves them.

Importing this module skips the importing test module when Chromium or chromedriver is missing
(scripts/system-deps.sh installs both; in CI a skip fails the run).
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, scaled, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip("Chromium and chromedriver are installed by scripts/system-deps.sh",
                allow_module_level=True)


class Browser:
    """The few WebDriver commands the tests need, each one HTTP request to chromedriver.
    Waits are the suite's ``wait_for`` (deadlines that stretch with the machine's load)."""

    def __init__(self, profile: Path, log: Path):
        self.port = free_port()
        self.log = log.open("w")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        try:
            wait_for(lambda: requests.get(self.base + "/status", timeout=scaled(2))
                     .json()["value"]["ready"], 60, "chromedriver to start", interval=0.1,
                     retry_on=(requests.ConnectionError, ValueError, KeyError))
            options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
            created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": options}}})
        except BaseException:
            self._stop_driver()
            raise
        self.session = f"/session/{created['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None):
        response = requests.request(method, self.base + path, json=body, timeout=scaled(60))
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
        """The element ``css`` selects, once the page has one."""
        def found() -> str | None:
            response = requests.post(self.base + f"{self.session}/element", timeout=scaled(30),
                                     json={"using": "css selector", "value": css})
            return response.json()["value"][ELEMENT] if response.status_code == 200 else None

        try:
            return wait_for(found, timeout, f"an element {css!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc} on {self.url()}: {self.source()[:2000]}") from None

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

    def script(self, script: str):
        """Run ``script`` (a function body) in the page; its return value."""
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": []})

    def resize(self, width: int, height: int) -> None:
        self._call("POST", f"{self.session}/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))
        return path

    def quit(self) -> None:
        try:
            requests.delete(self.base + self.session, timeout=scaled(30))
        finally:
            self._stop_driver()

    def _stop_driver(self) -> None:
        self.driver.terminate()
        try:
            self.driver.wait(scaled(10))
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()
        self.log.close()


class Mounted:
    """Serves the dashboard under Buildbot's mount path, so the pages' links work as they do
    inside the master."""

    def __init__(self, app, mount: str):
        self.app, self.mount = app, mount

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.mount):
            environ["SCRIPT_NAME"] = self.mount
            environ["PATH_INFO"] = path[len(self.mount):] or "/"
        return self.app(environ, start_response)


def serve_pages(settings):
    """Greenlight's pages for ``settings`` on a loopback port, under the master's mount path
    (the same Flask app the master runs). Returns the server: ``server_port``, ``shutdown()``."""
    from werkzeug.serving import make_server

    from greenlight.www.dashboard import MOUNT, make_app

    server = make_server("127.0.0.1", 0, Mounted(make_app(settings, session_secret=lambda: "s"),
                                                 MOUNT), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
