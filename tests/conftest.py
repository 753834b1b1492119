"""Shared fixtures. Engines' tests build real git repositories with ``make_repo``."""
from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Author",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# Pytest runs the tests start (the demo's suite, the shard plugin's targets, builds of worlds
# whose python is this venv's) need no hypothesis plugin, which imports all of hypothesis when it
# prints its summary: 0.65 s of CPU in each of ~65 processes. Set in each test process by the
# fixture below, never in xdist's controller: its workers would inherit it, and three of the
# suite's own modules use hypothesis.
CHILD_PYTEST_ADDOPTS = "-p no:hypothesispytest"


def child_env(**extra: str) -> dict:
    """This process's environment for a pytest (or coverage) run a test starts: without the
    outer run's pytest and coverage variables (xdist's worker id, a coverage process start)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_CORE", "COVERAGE_"))}
    env["PYTEST_ADDOPTS"] = CHILD_PYTEST_ADDOPTS
    env.update(extra)
    return env


@pytest.fixture(scope="session", autouse=True)
def _children_without_the_hypothesis_plugin() -> None:
    os.environ["PYTEST_ADDOPTS"] = CHILD_PYTEST_ADDOPTS
    # `make test` names this run's plugins (Makefile); the pytest runs the tests start (builds
    # with xdist, the shard plugin's entry point) find theirs as usual.
    os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)


T = TypeVar("T")

# A deadline is how long the wait takes on a quiet machine; it stretches with the machine's load
# so that a suite sharing two cores with other work still passes (deadlines only bound a wait that
# has already failed, so a long one costs nothing when things work).
SLOWDOWN_ENV = "GREENLIGHT_TEST_SLOWDOWN"
MAX_SLOWDOWN = 8.0


def slowdown() -> float:
    """How many times slower than a quiet machine this one runs now: ``GREENLIGHT_TEST_SLOWDOWN``
    when set, else the one-minute load average per core (never below 1, at most 8)."""
    forced = os.environ.get(SLOWDOWN_ENV)
    if forced:
        return max(1.0, float(forced))
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_SLOWDOWN, max(1.0, per_core))


def scaled(seconds: float) -> float:
    """``seconds`` on a quiet machine, stretched by the current load (for timeouts of calls)."""
    return seconds * slowdown()


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2,
             retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    ``timeout``: seconds on a quiet machine; the deadline stretches with the load seen while
    waiting. ``retry_on``: exceptions that mean "not yet" (a server still starting, a request
    that timed out under load); the last one is named if the deadline passes. ``what`` says what
    was awaited, for the failure message.
    """
    start = time.monotonic()
    factor = slowdown()
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except retry_on as exc:
            last_error = exc
        factor = max(factor, slowdown())
        waited = time.monotonic() - start
        if waited >= timeout * factor:
            break
        time.sleep(min(interval, timeout * factor - waited))
    detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
    raise AssertionError(f"timed out after {waited:.0f} s ({timeout:g} s x load {factor:.1f}) "
                         f"waiting for {what}{detail}")


# Ports the tests' servers listen on: below Linux's ephemeral range (32768-60999 here), from
# which every outgoing connection (HTTP clients, demo traffic, Buildbot workers, database
# drivers) takes its local port. A port picked from that range can be taken by such a
# connection before the test's server binds it ("Address already in use").
TEST_PORTS = range(20000, 32000)


def free_ports(n: int = 1, contiguous: bool = False) -> list[int]:
    """``n`` distinct loopback ports free right now, outside the ephemeral range (consecutive
    when ``contiguous``). Random, so parallel test processes rarely pick the same ones."""
    rng = random.Random()
    for _ in range(500):
        if contiguous:
            first = rng.randrange(TEST_PORTS.start, TEST_PORTS.stop - n)
            candidates = list(range(first, first + n))
        else:
            candidates = rng.sample(TEST_PORTS, n)
        socks = []
        try:
            for port in candidates:
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return candidates
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} free loopback ports in {TEST_PORTS}")


def free_port() -> int:
    return free_ports(1)[0]


def git(cwd: Path | str, *args: str, env: dict | None = None) -> str:
    """Run git with an argument list (never a shell string) and return its stdout."""
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
    out = subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True,
                         capture_output=True)
    return out.stdout.decode("utf-8", "surrogateescape").strip()


class Repo:
    """A real git work tree for tests: write files, commit, read shas."""

    def __init__(self, path: Path):
        self.path = path
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
        git(path, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
        git(path, "config", "commit.gpgsign", "false")

    def write(self, name: str | bytes, content: str | bytes) -> Path:
        target = Path(os.fsdecode(name))
        full = self.path / target
        full.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            full.write_text(content)
        else:
            full.write_bytes(content)
        return full

    def commit(self, message: str = "change", author: str | None = None, **env: str) -> str:
        git(self.path, "add", "-A")
        extra = dict(env)
        if author:
            name, _, email = author.partition(" <")
            extra.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email.rstrip(">") or "a@b.c")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, env=extra)
        return self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        return git(self.path, *args)


PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "gl") -> Iterator[str]:
    """A new database on the real PostgreSQL for one test (tests run in parallel), dropped after.

    Yields its name; the URL is ``f"{PG_SERVER}/{name}"``."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    with fresh_pg_database() as name:
        yield f"{PG_SERVER}/{name}"


@pytest.fixture
def make_repo(tmp_path):
    """Factory of fresh git repositories under the test's tmp dir."""
    counter = iter(range(1000))

    def factory(name: str | None = None) -> Repo:
        path = tmp_path / (name or f"repo{next(counter)}")
        path.mkdir()
        return Repo(path)

    return factory


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every service and tool is installed by the project's scripts, so a test that
    skips there would assert nothing: turn the skip into a failure."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"


_WARMING: list = []


def pytest_sessionstart(session) -> None:
    """xdist's controller, idle while its workers collect (10-15 s of CPU each), makes the
    caches the first worlds need meanwhile (tests.world.warm_caches); workers that need one
    before it is made wait on its lock as before."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    from tests.world import warm_caches

    _WARMING.extend(warm_caches(child_env()))


def pytest_sessionfinish(session) -> None:
    for proc in _WARMING:
        try:
            proc.wait(timeout=scaled(300))
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config) -> int | None:
    """``-n auto``: one xdist worker more than the cores this process may run on. A good part of
    the suite waits rather than computes (builds in a master, a store held down for 30 s, a
    canary's window, a browser): with one worker per core, a core idles whenever its worker
    waits. Quiet 2-core machine, the whole suite: 2 workers 375-383 s, 3 workers 297 s,
    4 workers 284 s for 7% more CPU; session 8: 3 workers 297-334 s, 4 workers 310 s
    (bench/RESULTS.md, "test suite"). xdist's own
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1


# Seconds each slow module took in the whole suite (3 xdist workers, quiet 2-core machine,
# 2026-12-07; they only order the run, so a stale figure costs time, never a result). With
# `--dist loadfile` a module is one unit of work for one xdist worker: the long ones must start
# first, or the one that starts last sets the suite's wall time while the other workers sit
# idle. Modules not named here come after them, in collection order; an unnamed e2e module (a
# real master or browser) counts as E2E_SECONDS.
MODULE_SECONDS = {
    "tests/adopt/test_adopt_e2e.py": 72,
    "tests/push/test_push_to_verdict_e2e.py": 62,
    "tests/experiments/test_spool.py": 56,
    "tests/deploy/test_buildbot_e2e.py": 53,
    "tests/shards/test_fanout_e2e.py": 33,
    "tests/shards/test_auto_fanout_e2e.py": 31,
    "tests/deploy/test_pages_browser.py": 30,
    "tests/master/test_postgres_db_e2e.py": 29,
    "tests/deploy/judge/test_demo_canary.py": 25,
    "tests/master/test_remote_workers_e2e.py": 24,
    "tests/steps/test_deploy_live_e2e.py": 23,
    "tests/experiments/test_page_e2e.py": 22,
    "tests/deploy/test_phases.py": 20,
    "tests/deploy/test_failures.py": 18,
    "tests/shards/test_e2e_fanout.py": 17,
    "tests/push/test_pre_push_e2e.py": 16,
    "tests/schema_review/test_page_e2e.py": 16,
    "tests/schema_review/test_browser.py": 15,
    "tests/push/test_webhooks_e2e.py": 14,
    "tests/shards/test_pytest_plugin.py": 13,
    "tests/experiments/test_report.py": 13,
    "tests/deploy/test_crash.py": 12,
}
E2E_SECONDS = 20

# Modules whose tests share one plain world (the ``shared_world`` fixture) instead of starting
# one each: a world's start and stop cost ~4.5 s of CPU. xdist hands them to one worker as one
# unit of work (``pytest_xdist_make_scheduler`` below), which runs them one after the other.
SHARED_WORLD_MODULES = (
    "tests/experiments/test_page_e2e.py",
    "tests/incidents/test_page_e2e.py",
    "tests/push/test_webhooks_e2e.py",
)
SHARED_WORLD = "shared-world"   # their unit of work's name


def module_seconds(item: pytest.Item) -> float:
    """How long ``item``'s unit of work is expected to take (0: not known to be slow)."""
    path = unit_of_work(item.nodeid)
    if path == SHARED_WORLD:
        return sum(MODULE_SECONDS.get(shared, E2E_SECONDS) for shared in SHARED_WORLD_MODULES)
    if path in MODULE_SECONDS:
        return MODULE_SECONDS[path]
    return E2E_SECONDS if item.get_closest_marker("e2e") else 0


@pytest.fixture(scope="session")
def shared_world(tmp_path_factory):
    """The world of the SHARED_WORLD_MODULES (tests.world.start_shared_world), started by the
    first of them that runs in this process and stopped when the session ends."""
    from tests.world import start_shared_world   # (tests.world imports this module)

    world = start_shared_world(tmp_path_factory.mktemp("shared-world"))
    yield world
    world.down()


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (pyproject.toml), with the SHARED_WORLD_MODULES as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedWorldScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    return SharedWorldScheduling(config, log)


def unit_of_work(nodeid: str) -> str:
    """What xdist hands to one worker with the test ``nodeid``: its module, or all the
    SHARED_WORLD_MODULES together."""
    path = nodeid.split("::", 1)[0]
    return SHARED_WORLD if path in SHARED_WORLD_MODULES else path


def pytest_collection_modifyitems(session, config, items):
    """Slowest modules first (a stable sort: each module's tests keep their order and stay
    together). xdist hands out modules in this order (``--no-loadscope-reorder`` in
    pyproject.toml: its own reorder would put the modules with the most tests first)."""
    items.sort(key=lambda item: -module_seconds(item))
