"""Hosts and deploy settings: the ``[deploy]`` section of the settings file, parsed once.

``DeploySettings.from_section`` is the one reader of ``[deploy]``: every key's check and default
live here (the central schema only hands the table over), so a typo is reported with its file,
line and key before any host is touched. The keys are documented in docs/deploy.md.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from greenlight.errors import SettingsError
from greenlight.settings import Settings

HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SSH_ADDRESS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
SSH_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")
STRICT_VALUES = ("yes", "no", "accept-new")


@dataclass(frozen=True)
class Host:
    """One production host: where its releases live and how to restart and check it."""
    name: str
    transport: str = "local"  # local | ssh
    path: str = ""  # the host directory holding releases/ and current
    port: int = 0  # the app's port (placeholder {port}; default health and metrics URLs)
    restart: tuple[str, ...] = ()  # argv run on the host after a switch; placeholders allowed
    health_url: str = ""
    metrics_url: str = ""
    address: str = "127.0.0.1"  # ssh: host to connect to; also the default URL host
    user: str = ""
    ssh_port: int = 22
    identity_file: str = ""
    known_hosts_file: str = ""
    strict_host_key_checking: str = "yes"
    remote_python: str = "python3"
    start_log: str = ""  # the app's start-up log, relative to path (tail shown when it fails)

    def expand(self, argv: tuple[str, ...] | list[str]) -> list[str]:
        """Fill {name} {path} {port} {python} in each argument (never through a shell)."""
        values = {"{name}": self.name, "{path}": self.path, "{port}": str(self.port),
                  "{python}": sys.executable if self.transport == "local" else self.remote_python}
        out = []
        for arg in argv:
            for key, value in values.items():
                arg = arg.replace(key, value)
            out.append(arg)
        return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _argv_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(a, str) for a in v)


@dataclass(frozen=True)
class _Key:
    """One ``[deploy]`` key: its check, what it expects (for the error) and its default."""
    check: Callable[[Any], bool]
    expected: str
    default: Any


# Every key of [deploy]: the one place their checks and defaults live.
KEYS: dict[str, _Key] = {
    "enabled": _Key(lambda v: isinstance(v, bool), "true or false", True),
    "hosts": _Key(lambda v: isinstance(v, list) and all(isinstance(t, dict) for t in v),
                  "a list of host tables ([[deploy.hosts]])", []),
    "demo_hosts": _Key(lambda v: _whole(v) and v >= 0, "a whole number of local demo hosts",
                       20),
    "demo_first_port": _Key(lambda v: _whole(v) and 1 <= v <= 65535, "a TCP port number",
                            18100),
    "demo_traffic_rate": _Key(lambda v: _number(v) and 0 <= v <= 500,
                              "requests/s per demo host while a deploy runs, 0-500 "
                              "(0 = no traffic)", 40),
    "demo_traffic_idle_rate": _Key(lambda v: _number(v) and 0 <= v <= 500,
                                   "requests/s per demo host between deploys, 0-500", 2),
    "demo_traffic_seconds": _Key(lambda v: _whole(v) and 1 <= v <= 86400,
                                 "seconds, 1-86400 (the traffic stops by itself)", 14400),
    "canary_fraction": _Key(lambda v: _number(v) and 0 < v <= 1, "a fraction in (0, 1]", 0.05),
    "keep_releases": _Key(lambda v: _whole(v) and v >= 2,
                          "a whole number >= 2 (current and previous)", 5),
    "health_path": _Key(lambda v: isinstance(v, str) and v.startswith("/"), "a URL path",
                        "/health"),
    "health_timeout": _Key(lambda v: _number(v) and v > 0, "seconds > 0", 2.0),
    "health_retries": _Key(lambda v: _whole(v) and v >= 0, "a whole number", 20),
    "health_interval": _Key(lambda v: _number(v) and v >= 0, "seconds", 0.25),
    "restart_timeout": _Key(lambda v: _number(v) and v > 0, "seconds > 0", 30.0),
    "build_timeout": _Key(lambda v: _number(v) and v > 0, "seconds > 0", 600.0),
    "migrate_timeout": _Key(lambda v: _number(v) and v > 0, "seconds > 0", 600.0),
    "build_command": _Key(_argv_list, "a list of strings (an argument list, no shell)", []),
    "migrate_command": _Key(_argv_list, "a list of strings (an argument list, no shell)", []),
    # the canary window's hard maximum: it ends sooner once every metric is decided or the
    # traffic has shown each min_effect (the window follows the traffic)
    "observe_seconds": _Key(lambda v: _number(v) and v >= 1, "seconds >= 1", 900.0),
    "judge_interval": _Key(lambda v: _number(v) and v > 0, "seconds > 0", 1.0),
    "final_observe_seconds": _Key(lambda v: _number(v) and v >= 0, "seconds >= 0", 0.0),
    # an undecided window with no evidence of harm: pass (recorded as undecided) | fail
    "on_window_end": _Key(lambda v: v in ("fail", "pass"), "fail or pass", "pass"),
    "parallel": _Key(lambda v: _whole(v) and v >= 1, "a whole number >= 1", 4),
    "prometheus_url": _Key(lambda v: isinstance(v, str), "a Prometheus server URL or empty",
                           ""),
    "judge": _Key(lambda v: isinstance(v, dict), "a table ([deploy.judge])", {}),
    "metrics": _Key(lambda v: isinstance(v, list) and all(isinstance(t, dict) for t in v),
                    "a list of metric tables ([[deploy.metrics]])", []),
    # checked by the central schema: the incident engine reads the ledger too
    "ledger_url": _Key(lambda v: isinstance(v, str), "an SQLAlchemy URL", None),
}

HOST_KEYS = ("name", "transport", "path", "port", "restart", "health_url", "metrics_url",
             "start_log", "address", "user", "ssh_port", "identity_file", "known_hosts_file",
             "strict_host_key_checking", "remote_python")


@dataclass
class DeploySettings:
    """The ``[deploy]`` section, typed; the field defaults are the keys' defaults (KEYS)."""
    hosts: list[Host]
    repo: str = "var/demo.git"
    branch: str = "main"
    canary_fraction: float = KEYS["canary_fraction"].default
    keep_releases: int = KEYS["keep_releases"].default
    ledger_url: str = "sqlite:///var/deploy-ledger.sqlite"
    state_dir: str = "var/deploy"
    build: tuple[str, ...] = ()  # run in each new release dir on the host before it is finished
    migrate: tuple[str, ...] = ()  # run once, in an export of the commit, before any switch
    migrate_timeout: float = KEYS["migrate_timeout"].default
    build_timeout: float = KEYS["build_timeout"].default
    restart_timeout: float = KEYS["restart_timeout"].default
    health_timeout: float = KEYS["health_timeout"].default
    health_retries: int = KEYS["health_retries"].default
    health_interval: float = KEYS["health_interval"].default
    observe_seconds: float = KEYS["observe_seconds"].default  # canary window: judge's maximum
    judge_interval: float = KEYS["judge_interval"].default  # between two judge.observe() calls
    final_observe_seconds: float = KEYS["final_observe_seconds"].default  # health after all
    on_window_end: str = KEYS["on_window_end"].default  # an undecided judge at the end
    parallel: int = KEYS["parallel"].default  # hosts switched at once in the "rest" phase
    judge: dict[str, Any] = field(default_factory=dict)  # passed to Judge(settings) as is
    source: str = "<embedded default>"
    enabled: bool = True
    demo: bool = False  # the hosts are the local demo hosts (no [[deploy.hosts]] given)
    demo_first_port: int = KEYS["demo_first_port"].default
    demo_traffic_rate: float = KEYS["demo_traffic_rate"].default
    demo_traffic_idle_rate: float = KEYS["demo_traffic_idle_rate"].default
    demo_traffic_seconds: int = KEYS["demo_traffic_seconds"].default

    @property
    def lock_file(self) -> str:
        return os.path.join(self.state_dir, "deploy.lock")

    def canary_count(self) -> int:
        """ceil(fraction × hosts), at least one, never more than there are hosts."""
        n = len(self.hosts)
        if n == 0:
            return 0
        return max(1, min(n, math.ceil(self.canary_fraction * n - 1e-9)))

    @classmethod
    def from_section(cls, settings: Settings) -> DeploySettings:
        """Parse ``[deploy]`` of the loaded settings: unknown keys, wrong kinds and bad host
        tables raise SettingsError naming file:line and key; absent keys take KEYS' defaults;
        the judge table is checked by the judge itself, with its file:line too."""
        section = settings["deploy"]
        for key in section:
            if key not in KEYS:
                raise SettingsError(f"{settings.where('deploy', key)}: [deploy] {key}: unknown "
                                    f"key; expected one of {', '.join(KEYS)}")
        value: dict[str, Any] = {}
        for key, spec in KEYS.items():
            if key in section:
                if not spec.check(section[key]):
                    raise SettingsError(f"{settings.where('deploy', key)}: [deploy] {key}: "
                                        f"expected {spec.expected}, got {section[key]!r}")
                value[key] = section[key]
            else:
                value[key] = spec.default
        state_dir = str(settings.state_dir)
        hosts = [host_from_table(table, lambda k, i=i: settings.where("deploy", "hosts", i, k))
                 for i, table in enumerate(value["hosts"])]
        if not hosts:
            hosts = demo_hosts(str(Path(state_dir, "hosts").absolute()), value["demo_hosts"],
                               value["demo_first_port"], value["health_path"])
        names = [h.name for h in hosts]
        if len(set(names)) != len(names):
            raise SettingsError(f"{settings.where('deploy', 'hosts')}: [deploy] hosts: names "
                                f"must be unique, got {names}")
        judge = judge_table(value, settings.where("deploy", "judge"))
        deploy = cls(
            hosts=hosts, repo=settings.repo_url, branch=settings["repository"]["deploy_branch"],
            canary_fraction=float(value["canary_fraction"]),
            keep_releases=value["keep_releases"],
            ledger_url=settings.expand(section["ledger_url"]),
            state_dir=str(Path(state_dir, "deploy").absolute()),
            build=tuple(value["build_command"]), migrate=tuple(value["migrate_command"]),
            on_window_end=value["on_window_end"], judge=judge, source=settings.source,
            enabled=value["enabled"], demo=not value["hosts"],
            demo_first_port=value["demo_first_port"],
            demo_traffic_rate=float(value["demo_traffic_rate"]),
            demo_traffic_idle_rate=float(value["demo_traffic_idle_rate"]),
            demo_traffic_seconds=value["demo_traffic_seconds"],
            observe_seconds=float(value["observe_seconds"]),
            **{k: float(value[k]) for k in ("migrate_timeout", "build_timeout",
                                            "restart_timeout", "health_timeout",
                                            "health_interval", "judge_interval",
                                            "final_observe_seconds")},
            health_retries=value["health_retries"], parallel=value["parallel"])
        from greenlight.deploy.judge import Judge  # numpy: only once the rest is valid

        Judge.from_settings(deploy.judge, max_window_s=deploy.observe_seconds,
                            on_timeout=deploy.on_window_end,
                            where=f"{settings.where('deploy', 'judge')}: [deploy.judge]")
        return deploy


def demo_hosts(base: str, count: int, first_port: int, health_path: str = "/health"
               ) -> list[Host]:
    """The demo world: ``count`` local hosts under ``base`` serving on consecutive ports."""
    hosts = []
    for i in range(count):
        name = f"host{i + 1:02d}"
        port = first_port + i
        hosts.append(Host(
            name=name, transport="local", path=str(Path(base, name)), port=port,
            restart=("{python}", "-m", "greenlight.deploy.demo_hosts", "restart", "{path}",
                     "--port", "{port}"),
            health_url=f"http://127.0.0.1:{port}{health_path}",
            metrics_url=f"http://127.0.0.1:{port}/metrics", start_log="server.log"))
    return hosts


def host_from_table(table: dict, where: Callable[[str | None], str]) -> Host:
    """One ``[[deploy.hosts]]`` table; ``where(key)`` is the file:line of a key."""
    def fail(key: str | None, message: str) -> None:
        raise SettingsError(f"{where(key)}: [[deploy.hosts]] {key or ''}: {message}")

    def get(key: str, kind, default):
        value = table.get(key, default)
        if value is default:
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            fail(key, f"expected {kind.__name__}, got {value!r}")
        return value

    for key in table:
        if key not in HOST_KEYS:
            fail(key, f"unknown key; expected one of {', '.join(HOST_KEYS)}")
    name = get("name", str, None)
    if not name or not HOST_NAME_RE.match(name):
        fail("name", f"must match {HOST_NAME_RE.pattern}, got {name!r}")
    transport = get("transport", str, "local")
    if transport not in ("local", "ssh"):
        fail("transport", f"host {name}: must be local or ssh, got {transport!r}")
    path = get("path", str, None)
    if not path:
        fail("path", f"host {name}: `path` (its releases directory) is required")
    port = get("port", int, 0)
    address = get("address", str, "127.0.0.1")
    if not SSH_ADDRESS_RE.match(address):
        fail("address", f"host {name}: {address!r} is not a host name")
    user = get("user", str, "")
    if user and not SSH_USER_RE.match(user):
        fail("user", f"host {name}: {user!r} is not a user name")
    strict = get("strict_host_key_checking", str, "yes")
    if strict not in STRICT_VALUES:
        fail("strict_host_key_checking", f"host {name}: must be one of {STRICT_VALUES}, got "
             f"{strict!r}")
    restart = get("restart", list, [])
    if not all(isinstance(a, str) for a in restart):
        fail("restart", f"host {name}: must be a list of strings (an argument list, no shell)")
    start_log = get("start_log", str, "")
    if start_log and (start_log.startswith("/") or ".." in Path(start_log).parts):
        fail("start_log", f"host {name}: a path inside the host directory, got {start_log!r}")
    url_host = "127.0.0.1" if transport == "local" else address
    return Host(
        name=name, transport=transport,
        path=path if transport == "ssh" else str(Path(path).absolute()),
        port=port, restart=tuple(restart),
        health_url=get("health_url", str, f"http://{url_host}:{port}/health"),
        metrics_url=get("metrics_url", str, f"http://{url_host}:{port}/metrics"),
        start_log=start_log, address=address, user=user, ssh_port=get("ssh_port", int, 22),
        identity_file=os.path.expanduser(get("identity_file", str, "")),
        known_hosts_file=os.path.expanduser(get("known_hosts_file", str, "")),
        strict_host_key_checking=strict, remote_python=get("remote_python", str, "python3"))


# The deploy's own keys decide these; the same keys in [deploy.judge] would be ignored.
JUDGE_KEYS_SET_BY_DEPLOY = {"max_window_s": "observe_seconds", "on_timeout": "on_window_end"}


def judge_table(section: dict, where: str) -> dict[str, Any]:
    """The table given to ``Judge.from_settings``: ``[deploy.judge]`` plus the section-level
    ``[[deploy.metrics]]`` and ``prometheus_url`` (either place, never both)."""
    judge = dict(section.get("judge") or {})
    for key, instead in JUDGE_KEYS_SET_BY_DEPLOY.items():
        if key in judge:
            raise SettingsError(f"{where}: [deploy.judge] `{key}` is set by the deploy's "
                                f"`{instead}`; set `{instead}` in [deploy] instead")
    for key in ("metrics", "prometheus_url"):
        if section.get(key):
            if judge.get(key) and judge[key] != section[key]:
                raise SettingsError(f"{where}: `{key}` is given both in [deploy] and in "
                                    f"[deploy.judge]; keep one")
            judge[key] = section[key]
    return judge


def load_settings(path: str | None = None) -> DeploySettings:
    """The deploy settings from the central settings file (``--settings``, else
    $GREENLIGHT_SETTINGS, else the embedded default: 20 local demo hosts)."""
    from greenlight.settings import load

    return DeploySettings.from_section(load(path))
