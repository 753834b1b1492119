"""A real Greenlight world for end-to-end tests: Buildbot master, workers, demo bare repo.

Everything runs for real (processes, git, HTTP); only the ports and folders are the test's own.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
from pathlib import Path

import requests

from tests.conftest import GIT_ENV, ROOT, free_ports, git, scaled, wait_for

VENV_CACHE = ROOT / "var" / "test-worker-venvs"  # shared by all tests: built once per machine
_STARTED: list["World"] = []


@atexit.register
def _stop_leftover_worlds() -> None:
    """A test that dies between up() and down() must not leave masters running."""
    for world in list(_STARTED):
        world.down()


def write_settings(base: Path, workers: int = 2, extra: str = "", demo_hosts: int = 0,
                   shards: int | str = 1, master: str = "", workers_extra: str = "") -> Path:
    """The world's settings file. ``shards``: ``[shards] count`` (default 1: the verify build
    runs its tests in one step, whatever the workers; "auto" or N >= 2 fans out), unless
    ``extra`` has its own ``[shards]`` section. ``extra`` follows ``[deploy] demo_hosts`` (more
    ``[deploy]`` keys, then sections of its own); ``master`` is more ``[master]`` keys;
    ``workers_extra`` follows ``[workers] count`` (``[[workers.remote]]`` tables)."""
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

{shards_section}
[deploy]
demo_hosts = {demo_hosts}
{extra}
""")
    return settings


# see World.rest_get
REST_HEADERS = {"Accept-Encoding": "identity"}
# A GET that failed in transit (a read timeout on a loaded machine, a dropped connection) is
# simply asked again: reads are idempotent, and the master stays up while a test runs.
TRANSIENT = (requests.ConnectionError, requests.Timeout,
             requests.exceptions.ChunkedEncodingError)  # a body cut off mid-read

class World:
    def __init__(self, base: Path, workers: int = 2, extra: str = "", demo_hosts: int = 0,
                 shards: int | str = 1, master: str = "", workers_extra: str = ""):
        """A world not started yet (``up()``); the arguments are write_settings'."""
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.settings_file = write_settings(base, workers, extra, demo_hosts, shards, master,
                                            workers_extra)
        from greenlight import settings as settings_mod

        self.settings = settings_mod.load(self.settings_file)
        self.url = f"http://127.0.0.1:{self.settings['master']['web_port']}/"
        self.bare = self.settings.state_dir / "repos" / "demo.git"
        self.env = {**os.environ, "GREENLIGHT_SETTINGS": str(self.settings_file)}

    def greenlight(self, *args: str, check: bool = True, timeout: float = 300):
        # `buildbot start` gives up when the master's log is silent for START_TIMEOUT seconds
        # (10 by default); loading master.cfg alone takes longer than that on a loaded machine.
        env = {**self.env, "START_TIMEOUT": f"{scaled(30):.0f}"}
        proc = subprocess.run([str(ROOT / ".venv" / "bin" / "greenlight"), *args], env=env,
                              capture_output=True, text=True, timeout=scaled(timeout))
        if check and proc.returncode != 0:
            raise AssertionError(f"greenlight {' '.join(args)} failed:\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        return proc

    def up(self) -> str:
        """Start the world; if start-up fails half-way, stop what did start, then fail."""
        _STARTED.append(self)
        try:
            return self.greenlight("up").stdout
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
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

    def api(self, path: str, **params):
        """GET a REST resource's JSON, asking again while the request fails in transit."""
        # (a list: a Response is falsy when its status is an error, which must raise at once)
        [response] = wait_for(lambda: [self.rest_get(path, **params)], 120,
                              f"GET api/v2/{path}", interval=1, retry_on=TRANSIENT)
        response.raise_for_status()
        return response.json()

    def rest_get(self, path: str, **params) -> requests.Response:
        """GET ``api/v2/<path>`` uncompressed: Buildbot's REST resource gzips on the fly, and
        under load a reply now and then came back with a body that was not a gzip stream
        ("incorrect header check"), failing a test that had done nothing wrong."""
        return requests.get(self.url + "api/v2/" + path, params=params,
                            timeout=(scaled(10), scaled(30)), headers=REST_HEADERS)

    def changes_for(self, revision: str) -> list[dict]:
        return self.api("changes", revision=revision)["changes"]

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
        return self.api("builders", name=name)["builders"][0]["builderid"]

    def builds_for(self, revision: str, builder: str = "verify") -> list[dict]:
        """Builds of ``revision`` on ``builder`` (the deploy builder builds it too)."""
        builder_id = self.builder_id(builder)
        builds = []
        for change in self.changes_for(revision):
            builds += [b for b in self.api(f"changes/{change['changeid']}/builds")["builds"]
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


def commit_all(clone: Path, message: str, **env: str) -> str:
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", message, env=env or None)
    return git(clone, "rev-parse", "HEAD")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
