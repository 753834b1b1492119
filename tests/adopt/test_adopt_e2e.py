"""docs/adopt.md, followed end to end on the second example application (examples/lending: a
Flask service with a src/ layout, dependency groups, its own health path and metric names).

The team's git server is a bare repository made here; its production is two hosts reached over
ssh (a real sshd on loopback, its own keys); its database is a fresh PostgreSQL database. The
walk: settings file → ``greenlight up --settings`` (hook installed) → an edited setting makes
``up`` restart the master → push → verify green with the coverage gate → deploy over ssh to
both hosts (migrations first, the app's own restart script, ``/healthz``) → live → a second
push under traffic: the canary judged on the app's ``lending_*`` metrics → live everywhere.
Each step's time is printed (``pytest -s``).
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, fresh_pg_database, free_ports, git, wait_for
from tests.deploy.test_ssh import sshd  # noqa: F401  (the fixture: a real sshd on loopback)
from tests.world import TRANSIENT, World, commit_all

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "lending"
DEADLINE = 120  # per wait on a quiet machine (wait_for stretches it with the load)
PAUSE = 0.02  # seconds between two members' visits (3 requests each)


class Clock:
    """Each step of the walk and how long it took."""

    def __init__(self):
        self.start = self.last = time.monotonic()
        self.steps: list[tuple[str, float]] = []

    def lap(self, step: str) -> None:
        now = time.monotonic()
        took, self.last = now - self.last, now
        self.steps.append((step, took))
        print(f"adopt e2e: {step:58} {took:5.1f} s (at {now - self.start:5.1f} s)", flush=True)


def settings_text(base: Path, bare: Path, web: int, pb: int, hosts: list[dict], db_url: str,
                  timeout: int = 600) -> str:
    """The settings file of docs/adopt.md, with this test's ports, paths and keys."""
    host_tables = "".join(f"""
[[deploy.hosts]]
name = "{h['name']}"
transport = "ssh"
address = "127.0.0.1"
ssh_port = {h['ssh_port']}
user = "root"
identity_file = "{h['identity']}"
known_hosts_file = "{h['known_hosts']}"
path = "{h['path']}"
port = {h['port']}
remote_python = "{sys.executable}"
restart = ["{{python}}", "current/deploy/restart.py", "--path", "{{path}}", "--port", "{{port}}"]
health_url = "http://127.0.0.1:{h['port']}/healthz"
metrics_url = "http://127.0.0.1:{h['port']}/metrics"
""" for h in hosts)
    return f"""
[greenlight]
state_dir = "{base / 'var'}"
title = "Lending"

[master]
basedir = "{base / 'master'}"
web_port = {web}
worker_port = {pb}

[repository]
name = "lending"
url = "{bare}"
branches = ["main"]
deploy_branch = "main"

[workers]
count = 1

[verify]
# The editable venv is keyed by the worker's build directory, new in every run: a cache of the
# test's own, not the shared one, so runs do not pile venvs up on the machine.
setup_command = ["{{python}}", "-m", "greenlight.worker.venv", "--cache", "{base / 'venvs'}",
                 "--link", ".venv", "--editable", "--group", "test"]
test_command = [".venv/bin/python", "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider"]
timeout = {timeout}

[coverage]
fail_under = 100

[schema]
dialect = "postgres"
migrations_dir = "db/migrations"
sizes_file = ""
db_url = "{db_url}"

[deploy]
canary_fraction = 0.5
observe_seconds = 60
health_retries = 200
health_interval = 0.1
migrate_command = ["{sys.executable}", "deploy/migrate.py", "--db", "{db_url}"]
build_command = ["{{python}}", "-m", "compileall", "-q", "src"]
{host_tables}
[[deploy.judge.metrics]]
name = "loans per request"
kind = "ratio"
numerator = "lending_loans_total"
denominator = "lending_http_requests_total"
direction = "lower-is-bad"
min_effect = 0.5

[[deploy.judge.metrics]]
name = "failures per request"
kind = "ratio"
numerator = "lending_http_failures_total"
denominator = "lending_http_requests_total"
direction = "higher-is-bad"
min_effect = 1.0
floor = 0.01
"""


class Traffic:
    """Members borrowing and returning books on every host, until stopped."""

    def __init__(self, urls: list[str]):
        self.stop = threading.Event()
        self.answered = 0
        self.threads = [threading.Thread(target=self._run, args=(url, i), daemon=True)
                        for i, url in enumerate(urls)]

    def _run(self, url: str, index: int) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            member = {"member": f"m{index}-{n}", "book": "dune"}
            try:
                session.get(f"{url}/books/dune", timeout=2)
                session.post(f"{url}/loans", data=member, timeout=2)
                session.post(f"{url}/returns", data=member, timeout=2)
                self.answered += 3
            except requests.RequestException:
                pass  # a host restarting
            # At most ~150 requests/s per host: enough for the judge within seconds, and the
            # two cores stay shared with the master and the deploy.
            self.stop.wait(PAUSE)

    def __enter__(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)


def wait_deploy_build(world: World, sha: str) -> dict:
    """The completed deploy build whose revision is ``sha``."""
    def done() -> list[dict]:
        builds = world.api("builders/deploy/builds", property="*", complete="true")["builds"]
        return [b for b in builds if b["properties"].get("revision", [None])[0] == sha]

    return wait_for(done, DEADLINE, f"a completed deploy build of {sha[:10]}", interval=0.5,
                    retry_on=TRANSIENT)[-1]


def step_log(world: World, build: dict, step_name: str, log_name: str) -> str:
    steps = {s["name"]: s for s in world.api(f"builds/{build['buildid']}/steps")["steps"]}
    logs = world.api(f"steps/{steps[step_name]['stepid']}/logs")["logs"]
    log = next(entry for entry in logs if entry["name"] == log_name)
    return world.rest_get(f"logs/{log['logid']}/raw").text


def serving(hosts: list[dict]) -> dict[str, str | None]:
    out = {}
    for h in hosts:
        try:
            out[h["name"]] = requests.get(f"http://127.0.0.1:{h['port']}/healthz",
                                          timeout=2).json()["release"]
        except (requests.RequestException, ValueError):
            out[h["name"]] = None
    return out


@pytest.fixture
def team(tmp_path, sshd):  # noqa: F811
    """The team's git server (a bare repository), a developer's clone of the example app, two
    ssh hosts and a PostgreSQL database, and a Greenlight world (not started) around them."""
    bare = tmp_path / "git-server" / "lending.git"
    bare.parent.mkdir()
    git(bare.parent, "init", "-q", "--bare", "-b", "main", bare.name)
    clone = tmp_path / "dev" / "lending"
    shutil.copytree(EXAMPLE, clone, ignore=shutil.ignore_patterns(
        "__pycache__", ".venv", ".coverage*", "junit.xml", ".pytest_cache"))
    git(clone, "init", "-q", "-b", "main")
    git(clone, "remote", "add", "origin", str(bare))
    ports = free_ports(4)
    hosts = [{"name": f"web{i + 1}", "port": ports[2 + i], "path": str(tmp_path / f"web{i + 1}"),
              "ssh_port": sshd["port"], "identity": sshd["identity"],
              "known_hosts": sshd["known_hosts"]} for i in range(2)]
    world = World(tmp_path / "greenlight")
    world.upgrade_master = True  # the walk of docs/adopt.md: `up` upgrades its new database
    with fresh_pg_database("lending") as db:
        db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
        world.settings_file.write_text(settings_text(world.base, bare, ports[0], ports[1],
                                                     hosts, db_url))
        world.url = f"http://127.0.0.1:{ports[0]}/"
        world.bare = bare
        yield {"world": world, "clone": clone, "hosts": hosts, "bare": bare, "db": db_url}
        world.down()
        for h in hosts:
            _stop_app(Path(h["path"]))


def _stop_app(path: Path) -> None:
    import os
    import signal

    try:
        os.kill(int((path / "lending.pid").read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def test_a_team_adopts_greenlight_following_the_document(team):
    world, clone, hosts = team["world"], team["clone"], team["hosts"]
    clock = Clock()

    out = world.up()  # `greenlight up` with $GREENLIGHT_SETTINGS = the settings file
    assert f"Server hook installed: {team['bare'] / 'hooks' / 'post-receive'}" in out, out
    clock.lap("settings file -> greenlight up (hook installed)")

    # A changed setting: `up` restarts the master with it instead of keeping the old config.
    pid = (world.base / "master" / "twistd.pid").read_text()
    world.settings_file.write_text(world.settings_file.read_text().replace(
        "timeout = 600", "timeout = 900"))
    out = world.greenlight("up").stdout
    assert "settings changed since the master started ([verify] timeout)" in out, out
    assert (world.base / "master" / "twistd.pid").read_text() != pid
    clock.lap("edited setting -> up restarts the master")

    first = commit_all(clone, "Lending: first version")
    push = world.push(clone, "main")
    assert push.returncode == 0, push.stderr
    verify = world.wait_build(first, timeout=DEADLINE)
    assert verify["results"] == 0, verify["state_string"]
    props = world.properties(verify["buildid"])
    assert props["coverage_passed"] is True and props["coverage_percent"] == 100.0
    assert props["coverage_new_lines"] > 50
    clock.lap("push -> verify green (venv built, tests, coverage gate)")

    deploy = wait_deploy_build(world, first)
    assert deploy["results"] == 0, deploy["state_string"]
    assert deploy["properties"]["deploy_outcome"][0] == "success"
    assert serving(hosts) == {h["name"]: first for h in hosts}
    clock.lap("deploy over ssh to 2 hosts (migrate, build, restart) -> live")
    from sqlalchemy import create_engine, text

    engine = create_engine(team["db"])
    with engine.connect() as conn:
        applied = [r[0] for r in conn.execute(text("SELECT version FROM schema_migrations "
                                                   "ORDER BY version"))]
    engine.dispose()
    assert applied == ["0001_create_books", "0002_create_loans"]

    catalog = clone / "src" / "lending" / "catalog.py"
    catalog.write_text(catalog.read_text() + '''
    def titles(self) -> list[str]:
        """Every book the library owns, by name."""
        return sorted(self.copies)
''')
    tests = clone / "tests" / "test_catalog.py"
    tests.write_text(tests.read_text() + '''

def test_titles_are_sorted():
    assert Catalog(copies={"b": 1, "a": 2}).titles() == ["a", "b"]
''')
    second = commit_all(clone, "Catalog: list the titles")
    assert world.push(clone, "main").returncode == 0
    verify = world.wait_build(second, timeout=DEADLINE)
    assert verify["results"] == 0, verify["state_string"]
    clock.lap("second push -> verify green")
    # Members use the service while the deploy prepares the release, then judges the canary.
    with Traffic([f"http://127.0.0.1:{h['port']}" for h in hosts]) as traffic:
        deploy = wait_deploy_build(world, second)
        judge_table = step_log(world, deploy, "phase-judge", "judge table")
        assert deploy["results"] == 0, deploy["state_string"] + "\n" + judge_table
    assert traffic.answered > 0
    assert "loans per request" in judge_table and "failures per request" in judge_table
    assert serving(hosts) == {h["name"]: second for h in hosts}
    clock.lap("canary judged on lending_* metrics -> live on both")
    total = time.monotonic() - clock.start
    print("adopt e2e steps: " + json.dumps({name: round(s, 1) for name, s in clock.steps})
          + f"; total {total:.1f} s", flush=True)

