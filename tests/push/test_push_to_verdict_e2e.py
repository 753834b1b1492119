"""End to end: git push → post-receive hook → real Buildbot master → worker → verdict."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import git, scaled
from tests.world import World, commit_all

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("world"), workers=1, xdist=True)  # the default command
    world.up()
    yield world
    world.down()


def test_up_prints_where_to_push_and_logins(world):
    out = world.up()  # running it again is safe
    assert world.url in out
    assert f"git clone {world.bare} ~/demo && " in out   # a clone outside the checkout
    assert "admin" in out and "viewer" in out
    assert "master already running" in out


def test_passing_push_builds_green(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "app" / "extra.py").write_text("def double(x):\n    return 2 * x\n")
    (clone / "tests" / "test_extra.py").write_text(
        "from app.extra import double\n\ndef test_double():\n    assert double(2) == 4\n")
    sha = commit_all(clone, "add double()")
    started = time.monotonic()
    push = world.push(clone, "main")
    assert push.returncode == 0, push.stderr
    assert time.monotonic() - started < scaled(10)   # the hook never waits on the build
    build = world.wait_build(sha)
    assert build["results"] == 0, build["state_string"]
    results = world.api(f"builds/{build['buildid']}/test_result_sets")["test_result_sets"]
    assert results and results[0]["tests_passed"] >= 13 and results[0]["tests_failed"] == 0


def test_failing_test_fails_build_and_is_named(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "tests" / "test_broken.py").write_text(
        "def test_broken_total():\n    assert 1 + 1 == 3, 'arithmetic is off'\n")
    sha = commit_all(clone, "a failing test")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(sha)
    assert build["results"] == 2  # FAILURE
    sets = world.api(f"builds/{build['buildid']}/test_result_sets")["test_result_sets"]
    assert sets[0]["tests_failed"] == 1
    tests = world.api(f"test_result_sets/{sets[0]['test_result_setid']}/results")["test_results"]
    failed = [t["test_name"] for t in tests if t["value"] == "0"]
    assert failed == ["tests/test_broken.py::test_broken_total"]
    steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
    test_step = next(s for s in steps if s["name"] == "tests")
    assert "test_broken_total" in test_step["state_string"]
    logs = world.api(f"steps/{test_step['stepid']}/logs")["logs"]
    failures = next(log for log in logs if log["name"] == "failures")
    text = world.rest_get(f"logs/{failures['logid']}/raw").text
    assert "arithmetic is off" in text
    # A red build still shows the coverage report (the gate runs after failing tests).
    by_name = {s["name"]: s for s in steps}
    assert test_step["results"] == 2
    coverage = by_name["coverage"]
    assert coverage["state_string"].startswith(("coverage of new code", "no new executable"))
    coverage_logs = {log["name"] for log in world.api(f"steps/{coverage['stepid']}/logs")["logs"]}
    assert {"report.md", "report.json", "coverage.html"} <= coverage_logs


def test_change_hook_rejects_unauthenticated_post(world):
    body = {"changes": [{"revision": "a" * 40, "branch": "main"}]}
    response = requests.post(world.url + "change_hook/greenlight", json=body, timeout=scaled(10))
    assert response.status_code == 401
    wrong = requests.post(world.url + "change_hook/greenlight", json=body, timeout=scaled(10),
                          auth=("greenlight-hook", "wrong"))
    assert wrong.status_code == 401
    assert world.changes_for("a" * 40) == []


def test_change_hook_rejects_garbage_with_reason(world):
    password = (world.settings.state_dir / "change-hook.secret").read_text().strip()
    response = requests.post(world.url + "change_hook/greenlight", data=b"{not json",
                             auth=("greenlight-hook", password), timeout=scaled(10))
    assert response.status_code == 400
    assert b"not JSON" in response.content


def test_read_only_user_cannot_rebuild_but_engineer_can(world):
    builds = world.api("builds", order="-buildid", limit=1)["builds"]
    build_id = builds[0]["buildid"]
    payload = {"id": 1, "jsonrpc": "2.0", "method": "rebuild", "params": {}}
    viewer = world.login("viewer")
    denied = viewer.post(world.url + f"api/v2/builds/{build_id}", json=payload, timeout=scaled(10))
    assert denied.status_code == 403
    anonymous = requests.post(world.url + f"api/v2/builds/{build_id}", json=payload, timeout=scaled(10))
    assert anonymous.status_code == 403
    dev = world.login("dev")
    allowed = dev.post(world.url + f"api/v2/builds/{build_id}", json=payload, timeout=scaled(10))
    assert allowed.status_code == 200, allowed.text
    assert "result" in allowed.json()


def test_resent_change_is_not_built_twice(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    (clone / "NOTES.md").write_text("notes\n")
    sha = commit_all(clone, "notes")
    # A branch the scheduler does not build: the change is recorded all the same, and
    # whether it is recorded twice is the question (a build of it would only cost time).
    assert world.push(clone, "HEAD:refs/heads/notes").returncode == 0
    change = world.wait_changes(sha)[0]
    password = (world.settings.state_dir / "change-hook.secret").read_text().strip()
    resend = {"changes": [{"revision": sha, "branch": "notes",
                           "properties": {k: v[0] for k, v in change["properties"].items()}}]}
    response = requests.post(world.url + "change_hook/greenlight", json=resend,
                             auth=("greenlight-hook", password), timeout=scaled(10))
    assert response.status_code == 200 and response.content == b"no change found"
    assert len(world.changes_for(sha)) == 1


def test_new_branch_with_shell_metacharacters_and_non_utf8_file(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    branch = "feature/$(touch${IFS}pwned);echo`id`>x&&true"
    git(clone, "checkout", "-q", "-b", branch)
    (clone / "data").mkdir()
    (clone / "data" / "caf\xe9.bin".encode("latin-1").decode("utf-8", "surrogateescape")
     ).write_bytes(b"\x00\x01binary")
    sha = commit_all(clone, "odd names")
    push = world.push(clone, f"HEAD:refs/heads/{branch}")
    assert push.returncode == 0, push.stderr
    change = world.wait_changes(sha)[0]
    assert change["branch"] == branch
    assert change["properties"]["greenlight_old"][0] == ""
    assert change["files"] == ["data/caf\\xe9.bin"]
    assert not (clone / "pwned").exists() and not (world.bare / "pwned").exists()


def test_force_push_is_reported_as_forced(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    git(clone, "checkout", "-q", "-b", "rewrite")
    (clone / "one.txt").write_text("1\n")
    first = commit_all(clone, "one")
    assert world.push(clone, "rewrite").returncode == 0
    git(clone, "reset", "-q", "--hard", "HEAD~1")
    (clone / "two.txt").write_text("2\n")
    second = commit_all(clone, "two")
    assert world.push(clone, "+rewrite").returncode == 0
    props = world.wait_changes(second)[0]["properties"]
    assert props["greenlight_forced"][0] is True
    assert props["greenlight_old"][0] == first
    assert props["greenlight_commits"][0] == [second]


def test_deleting_a_branch_is_ignored_and_empty_push_is_harmless(world, tmp_path):
    clone = world.clone(tmp_path / "c")
    git(clone, "checkout", "-q", "-b", "short-lived")
    sha = git(clone, "rev-parse", "HEAD")
    def changes_since(last_id: int) -> list[dict]:
        return sorted((c for c in world.api("changes")["changes"] if c["changeid"] > last_id),
                      key=lambda c: c["changeid"])

    before = max((c["changeid"] for c in world.api("changes")["changes"]), default=0)
    created = world.push(clone, "short-lived")   # new branch at an existing commit
    # The hook delivers before the push returns; the master records the change before it answers.
    assert created.returncode == 0 and "1 change(s) sent" in created.stderr, created.stderr
    [newest] = changes_since(before)
    assert newest["branch"] == "short-lived" and newest["revision"] == sha
    assert newest["properties"]["greenlight_commits"][0] == []
    empty = world.push(clone, "short-lived")  # nothing new: git says up to date
    assert empty.returncode == 0 and "Everything up-to-date" in empty.stderr
    deleted = world.push(clone, "--delete", "short-lived")
    assert deleted.returncode == 0 and "change(s) sent" not in deleted.stderr, deleted.stderr
    assert not list((world.bare / "greenlight-spool").glob("*.json"))   # nor kept for later
    # A later push is a barrier: once its change is in, the deletion's would be too.
    git(clone, "checkout", "-q", "-b", "after-delete")
    marker = world.push(clone, "after-delete")
    assert marker.returncode == 0 and "1 change(s) sent" in marker.stderr, marker.stderr
    assert [c["branch"] for c in changes_since(before)] == ["short-lived", "after-delete"]


def test_uncovered_code_fails_until_tested_even_after_an_unrelated_push(world, tmp_path):
    """The coverage gate measures from the last green build: a red push's lines stay gated."""
    clone = world.clone(tmp_path / "c")
    (clone / "tests" / "test_broken.py").unlink(missing_ok=True)  # left by an earlier test
    (clone / "app" / "pricing.py").write_text(
        "def discount(total):\n    if total > 100:\n        return total * 0.9\n    return total\n")
    untested = commit_all(clone, "add discount() without a test")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(untested)
    assert build["results"] == 2
    assert "app/pricing.py" in build["state_string"]
    # the tests ran under the gate: the coverage step judged the report they left, no re-run
    steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
    gate = next(s for s in steps if s["name"] == "coverage")
    logs = {log["name"] for log in world.api(f"steps/{gate['stepid']}/logs")["logs"]}
    assert {"how", "report.md", "report.json", "coverage.html"} <= logs, logs
    (clone / "CHANGELOG.md").write_text("- discount\n")
    unrelated = commit_all(clone, "changelog only")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(unrelated)
    assert build["results"] == 2, "a later push must not launder uncovered lines"
    (clone / "tests" / "test_pricing.py").write_text(
        "from app.pricing import discount\n\n"
        "def test_discount():\n    assert discount(200) == 180\n    assert discount(50) == 50\n")
    tested = commit_all(clone, "test discount()")
    assert world.push(clone, "main").returncode == 0
    build = world.wait_build(tested)
    assert build["results"] == 0, build["state_string"]
