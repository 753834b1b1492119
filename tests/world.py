"""A real Greenlight world for end-to-end tests: Buildbot master, workers, demo bare repo.

Everything runs for real (processes, git, HTTP); only the ports and folders are the test's own.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import GIT_ENV, ROOT, free_ports, git, scaled, wait_for

VENV_CACHE = ROOT / "var" / "test-worker-venvs"  # shared by all tests: built once per machine
MASTER_DB_CACHE = ROOT / "var" / "test-master-db"   # likewise: an upgraded, empty master database
ACCOUNTS_CACHE = ROOT / "var" / "test-accounts"     # likewise: the demo users' password files
DEFAULT_MASTER_DB = "sqlite:///state.sqlite"
_STARTED: list["World"] = []


@atexit.register
def _stop_leftover_worlds() -> None:
    """A test that dies between up() and down() must not leave masters running."""
    for world in list(_STARTED):
        world.down()


# The demo's own test command without `-n auto`: the demo's 28 tests take 1 s, and three
# processes starting under coverage take 2-6 s more per build. The default command (xdist,
# coverage through subprocesses) is the one test_push_to_verdict_e2e.py builds with.
SERIAL_TESTS = '[".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]'


def write_settings(base: Path, workers: int = 2, extra: str = "", demo_hosts: int = 0,
                   shards: int | str = 1, master: str = "", workers_extra: str = "",
                   xdist: bool = False) -> Path:
    """The world's settings file. ``shards``: ``[shards] count`` (default 1: the verify build
    runs its tests in one step, whatever the workers; "auto" or N >= 2 fans out), unless
    ``extra`` has its own ``[shards]`` section. ``extra`` follows ``[deploy] demo_hosts`` (more
    ``[deploy]`` keys, then sections of its own); ``master`` is more ``[master]`` keys;
    ``workers_extra`` follows ``[workers] count`` (``[[workers.remote]]`` tables).
    ``xdist``: the verify build runs the demo's tests with the default ``pytest -n auto``
    (else SERIAL_TESTS)."""
    test_command = "" if xdist else f"test_command = {SERIAL_TESTS}\n"
    web, pb = free_ports(2)
    shards_section = "" if "[shards]" in extra else f"[shards]\ncount = {json.dumps(shards)}\n"
    settings = base / "greenlight.toml"
    settings.write_text(f"""
[greenlight]
state_dir = "{base / 'var'}"

[master]
basedir = "{base / 'master'}"
web_port = {web}
worker_port = {pb}
{master}
[workers]
count = {workers}
{workers_extra}
[verify]
setup_command = ["{{python}}", "-m", "greenlight.worker.venv", "--requirements", "requirements.txt",
                 "--cache", "{VENV_CACHE}", "--link", ".venv"]
{test_command}
{shards_section}
[deploy]
demo_hosts = {demo_hosts}
{extra}
""")
    return settings


def seed_accounts(settings) -> None:
    """Give a new world the demo users ``up`` would create, from files made once per machine
    by ``up``'s own code (``lifecycle.ensure_users``) for the same roles: each new user costs
    ``up`` a PBKDF2 hash of 200,000 rounds (0.58 s of CPU for the three demo users, in every
    world). The master still checks every login against the hashes."""
    from greenlight_master.lifecycle import Report, ensure_users

    pwfile = settings.path("auth", "password_file")
    creds = settings.state_dir / "demo-credentials"
    if pwfile.exists() or creds.exists():
        return
    roles = json.dumps(settings["auth"]["roles"], sort_keys=True)
    template = ACCOUNTS_CACHE / hashlib.sha256(roles.encode()).hexdigest()[:16]
    ACCOUNTS_CACHE.mkdir(parents=True, exist_ok=True)
    with open(ACCOUNTS_CACHE / ".lock", "a") as lock:   # parallel test processes make it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "ready").exists():
            settings.state_dir.mkdir(parents=True, exist_ok=True)
            ensure_users(settings, Report())
            template.mkdir(exist_ok=True)
            shutil.copy2(pwfile, template / "passwords")
            shutil.copy2(creds, template / "demo-credentials")
            (template / "ready").write_text(roles)
            return
    pwfile.parent.mkdir(parents=True, exist_ok=True)
    creds.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template / "passwords", pwfile)
    shutil.copy2(template / "demo-credentials", creds)


def warm_caches(env: dict) -> list[subprocess.Popen]:
    """Start making, side by side, what the first worlds would otherwise make one after the
    other while every other test process waits on its lock: the master database template and
    the demo's worker venv (VENV_CACHE, the key a verify build of the demo asks for). The
    xdist controller calls this while its workers collect; each is a no-op once made."""
    procs = []
    if not (master_db_template_dir() / ".db-ready").exists():
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "from tests.world import master_db_template as m; m()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    scratch = ROOT / "var" / "warm-venv"   # where the venv's link lands
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "examples" / "demo" / "requirements.txt", scratch)
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "greenlight.worker.venv", "--requirements", "requirements.txt",
         "--cache", str(VENV_CACHE), "--link", ".venv"],
        cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def master_db_template_dir() -> Path:
    """Where this Buildbot version's master database template lives (made or not)."""
    import buildbot

    return MASTER_DB_CACHE / buildbot.version


def master_db_template() -> Path:
    """A master basedir holding an empty ``state.sqlite`` made by ``buildbot upgrade-master``
    (and ``greenlight up``'s record that it is ready), built once per machine and Buildbot
    version. A World copies it instead of running the upgrade (~5 s of CPU, 10-15 s at load),
    as a venv comes from VENV_CACHE; worlds with their own ``[master] db_url``, and the adopt
    walk, still upgrade their own."""
    template = master_db_template_dir()
    if (template / ".db-ready").exists():
        return template
    MASTER_DB_CACHE.mkdir(parents=True, exist_ok=True)
    with open(MASTER_DB_CACHE / ".lock", "a") as lock:   # parallel test processes build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / ".db-ready").exists():
            scratch = MASTER_DB_CACHE / f"scratch-{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            settings = write_settings(scratch)
            code = ("from greenlight.settings import load\n"
                    "from greenlight_master.lifecycle import Report, ensure_master, "
                    "master_basedir\n"
                    "s = load()\nensure_master(s, master_basedir(s), Report())\n")
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           env={**os.environ, "GREENLIGHT_SETTINGS": str(settings)},
                           timeout=scaled(300))
            made = scratch / "master"
            assert not list(made.glob("state.sqlite-*")), "the upgrade left a WAL behind"
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir()
            shutil.copy2(made / "state.sqlite", template / "state.sqlite")
            shutil.copy2(made / ".db-ready", template / ".db-ready.tmp")
            (template / ".db-ready.tmp").replace(template / ".db-ready")
            shutil.rmtree(scratch, ignore_errors=True)
    return template


# How long a REST read may go unanswered before it is asked again (seconds on a quiet machine,
# stretched by the load). A reply takes 5-15 ms here; now and then one never comes: the master
# logged the request's connection as idle ("Timing out client", 60 s later) while it served the
# builds of the same test, and the test waited out a 30-s timeout stretched to 60 s before the
# retry was answered at once (tests/shards/test_fanout_e2e.py: 70 s instead of 15).
READ_TIMEOUT = 10
# see World.rest_get
REST_HEADERS = {"Accept-Encoding": "identity"}
# A GET that failed in transit (a read timeout on a loaded machine, a dropped connection) is
# simply asked again: reads are idempotent, and the master stays up while a test runs.
TRANSIENT = (requests.ConnectionError, requests.Timeout,
             requests.exceptions.ChunkedEncodingError)  # a body cut off mid-read

class World:
    def __init__(self, base: Path, workers: int = 2, extra: str = "", demo_hosts: int = 0,
                 shards: int | str = 1, master: str = "", workers_extra: str = "",
                 xdist: bool = False, seed_build: bool = False):
        """A world not started yet (``up()``); the other arguments are write_settings'.

        ``seed_build``: the first ``up`` builds the demo repository's first commit, as it does
        for a user. Off by default: no test but the ``auto`` shard plan's looks at that build,
        and it costs every world a verify build (with shards, a fan-out; with demo hosts, a
        deploy) before its own tests start. Off, ``up`` finds the demo repository made with
        its first change not sent (the one a user's ``up`` would send is dropped here)."""
        self.seed_build = seed_build
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.settings_file = write_settings(base, workers, extra, demo_hosts, shards, master,
                                            workers_extra, xdist)
        self.upgrade_master = False  # True: `up` runs `buildbot upgrade-master` itself
        self._builder_ids: dict[str, int] = {}
        from greenlight import settings as settings_mod

        self.settings = settings_mod.load(self.settings_file)
        self.url = f"http://127.0.0.1:{self.settings['master']['web_port']}/"
        self.bare = self.settings.state_dir / "repos" / "demo.git"
        self.env = {**os.environ, "GREENLIGHT_SETTINGS": str(self.settings_file)}

    def greenlight(self, *args: str, check: bool = True, timeout: float = 300):
        # `up` gives the master START_TIMEOUT seconds to say it runs and each worker as long to
        # attach (60 by default): stretched here with the load, as every deadline of the tests.
        env = {**self.env, "START_TIMEOUT": f"{scaled(60):.0f}"}
        proc = subprocess.run([str(ROOT / ".venv" / "bin" / "greenlight"), *args], env=env,
                              capture_output=True, text=True, timeout=scaled(timeout))
        if check and proc.returncode != 0:
            raise AssertionError(f"greenlight {' '.join(args)} failed:\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        return proc

    def up(self) -> str:
        """Start the world; if start-up fails half-way, stop what did start, then fail."""
        from greenlight import settings as settings_mod

        settings = settings_mod.load(self.settings_file)   # as `up` will read it
        self._seed_master_db(settings)
        seed_accounts(settings)
        if not self.seed_build:
            self._make_demo_repo_unbuilt(settings)
        _STARTED.append(self)
        try:
            return self.greenlight("up").stdout
        except BaseException:
            self.down()
            raise

    def _seed_master_db(self, settings) -> None:
        """A new master with the default database starts from the upgraded template."""
        basedir = settings.path("master", "basedir")
        if self.upgrade_master or settings["master"]["db_url"] != DEFAULT_MASTER_DB \
                or (basedir / ".db-ready").exists():
            return
        template = master_db_template()
        basedir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(template / "state.sqlite", basedir / "state.sqlite")
        shutil.copy2(template / ".db-ready", basedir / ".db-ready")

    def _make_demo_repo_unbuilt(self, settings) -> None:
        """Create the demo repository as ``up`` would, then drop the first commit's change the
        server hook kept (no master was listening): ``up`` has nothing to send."""
        from greenlight.git import open_repo
        from greenlight.push.post_receive import hook_settings, raw_dirs
        from greenlight_master.lifecycle import Report, ensure_demo_repo

        if settings["repository"]["url"] or settings.demo_repo_path.exists():
            return
        bare = ensure_demo_repo(settings, Report())
        repo = open_repo(bare, search_parent_directories=False)
        _, spool_dir, _, _ = hook_settings(repo)
        for folder in raw_dirs(repo, spool_dir):
            shutil.rmtree(folder, ignore_errors=True)

    def down(self) -> None:
        """Stop what ``up`` started: ``greenlight down``'s own code, run in this process (the
        command's start-up alone is 2 s of imports; test_buildbot_e2e runs the command)."""
        from greenlight import settings as settings_mod
        from greenlight_master import lifecycle

        try:
            lifecycle.down(settings_mod.load(self.settings_file))
        except Exception:  # whatever it was, the command has its own go at it
            self.greenlight("down", check=False)
        if self in _STARTED:
            _STARTED.remove(self)

    def credentials(self) -> dict[str, str]:
        text = (self.settings.state_dir / "demo-credentials").read_text()
        return dict(line.split(" ", 1) for line in text.splitlines())

    def clone(self, dest: Path) -> Path:
        git(dest.parent, "clone", "-q", str(self.bare), dest.name)
        return dest

    def push(self, clone: Path, *refspec: str, env: dict | None = None
             ) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "push", "origin", *refspec], cwd=clone,
                              env={**os.environ, **GIT_ENV, **(env or {})},
                              capture_output=True, text=True, timeout=scaled(60))

    def api(self, path: str, read_timeout: float = READ_TIMEOUT, **params):
        """GET a REST resource's JSON, asking again while the request fails in transit (or
        gets no reply within ``read_timeout`` seconds, stretched by the load)."""
        # (a list: a Response is falsy when its status is an error, which must raise at once)
        [response] = wait_for(lambda: [self.rest_get(path, read_timeout, **params)], 120,
                              f"GET api/v2/{path}", interval=1, retry_on=TRANSIENT)
        response.raise_for_status()
        return response.json()

    def rest_get(self, path: str, read_timeout: float = READ_TIMEOUT,
                 **params) -> requests.Response:
        """GET ``api/v2/<path>`` uncompressed: Buildbot's REST resource gzips on the fly, and
        under load a reply now and then came back with a body that was not a gzip stream
        ("incorrect header check"), failing a test that had done nothing wrong."""
        return requests.get(self.url + "api/v2/" + path, params=params,
                            timeout=(scaled(10), scaled(read_timeout)), headers=REST_HEADERS)

    def changes_for(self, revision: str, read_timeout: float = READ_TIMEOUT) -> list[dict]:
        return self.api("changes", read_timeout, revision=revision)["changes"]

    def wait_build(self, revision: str, timeout: float = 180, builder: str = "verify") -> dict:
        """Wait until a ``builder`` build of ``revision`` completes; return it. ``timeout`` is
        for a quiet machine (``wait_for`` stretches it with the load)."""
        done = wait_for(lambda: [b for b in self.builds_for(revision, builder) if b["complete"]],
                        timeout, f"a completed {builder} build of {revision[:10]}",
                        interval=0.5, retry_on=TRANSIENT)
        return done[-1]

    def wait_changes(self, revision: str, timeout: float = 30) -> list[dict]:
        """The changes the master recorded for ``revision``, once there is one."""
        return wait_for(lambda: self.changes_for(revision), timeout,
                        f"a change for {revision[:10]}", interval=0.25, retry_on=TRANSIENT)

    def shard_builds(self, parent_id: int) -> list[dict]:
        """The shard builds verify build ``parent_id`` triggered (by their parent property)."""
        builds = self.api(f"builders/{self.builder_id('shard')}/builds",
                          property=["shard_parent_buildid", "shard_index"])["builds"]
        return [b for b in builds
                if b["properties"].get("shard_parent_buildid", [None])[0] == parent_id]

    def wait_shard_builds(self, parent_id: int, count: int, timeout: float = 60) -> list[dict]:
        """The shard builds of ``parent_id`` once ``count`` of them have finished."""
        def finished() -> list[dict] | None:
            mine = self.shard_builds(parent_id)
            return mine if len(mine) >= count and all(b["complete"] for b in mine) else None

        return wait_for(finished, timeout, f"{count} finished shard builds of build {parent_id}",
                        interval=0.5, retry_on=TRANSIENT)

    def builder_id(self, name: str) -> int:
        """A builder's id (asked once: the master keeps a builder's id across restarts)."""
        if name not in self._builder_ids:
            self._builder_ids[name] = self.api("builders", name=name)["builders"][0]["builderid"]
        return self._builder_ids[name]

    def builds_for(self, revision: str, builder: str = "verify",
                   read_timeout: float = READ_TIMEOUT) -> list[dict]:
        """Builds of ``revision`` on ``builder`` (the deploy builder builds it too)."""
        builder_id = self.builder_id(builder)
        builds = []
        for change in self.changes_for(revision, read_timeout):
            builds += [b for b in self.api(f"changes/{change['changeid']}/builds",
                                           read_timeout)["builds"]
                       if b["builderid"] == builder_id]
        return builds

    def properties(self, build_id: int) -> dict:
        """A build's properties, name -> value."""
        props = self.api(f"builds/{build_id}/properties")["properties"]
        return {k: v[0] for k, v in (props[0] if props else {}).items()}

    def login(self, user: str) -> requests.Session:
        session = requests.Session()
        session.headers.update(REST_HEADERS)
        response = session.get(self.url + "auth/login", auth=(user, self.credentials()[user]),
                               timeout=scaled(30))
        response.raise_for_status()
        return session


# The forge secret of the shared world's webhooks (tests/push/test_webhooks_e2e.py signs with it).
SHARED_WEBHOOK_SECRET = b"s3cret-shared-with-the-forge"


def start_shared_world(base: Path) -> World:
    """The plain world the modules of ``tests.conftest.SHARED_WORLD_MODULES`` share (the
    ``shared_world`` fixture): one local worker, the default database, webhooks on, no demo
    hosts. Each of those modules keeps to what is its own in it (its branch, its pages, its
    ledger rows), so their order does not matter."""
    (base / "webhook.secret").write_bytes(SHARED_WEBHOOK_SECRET + b"\n")
    world = World(base, workers=1,
                  extra=f'\n[webhooks]\nsecret_file = "{base / "webhook.secret"}"\n')
    world.env.pop("GREENLIGHT_EXPERIMENTS_DB", None)   # the world's own store, not the caller's
    world.up()
    return world


def commit_all(clone: Path, message: str, **env: str) -> str:
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", message, env=env or None)
    return git(clone, "rev-parse", "HEAD")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
