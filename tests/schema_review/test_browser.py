"""A real browser clicks Approve: Chromium driven over WebDriver (tests/browser.py), against a
real master.

Chrome ignores credentials in URLs for Buildbot's /auth/login, so the test logs in with requests
and hands the session cookie to the browser; the click then goes through the page's own form,
CSRF token and Origin, exactly as a reviewer's would.
"""
from __future__ import annotations

import pytest
import requests

from tests.browser import Browser  # skips without Chromium
from tests.conftest import scaled, wait_for
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e

PAGE = "plugins/wsgi_dashboards/greenlight/schema/"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("browser-world"), workers=1)
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
    everything = requests.get(world.url + PAGE + "?all=1", timeout=scaled(10)).text
    assert "approved from Chromium" in everything
