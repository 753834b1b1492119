"""Hosts and deploy settings: the ``[deploy]`` section of the settings file, validated.

Everything a deploy needs is read once here so a typo in the settings is reported with its key
before any host is touched. The schema is documented in docs/deploy.md.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenlight.errors import SettingsError

HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SSH_ADDRESS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
SSH_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")
STRICT_VALUES = ("yes", "no", "accept-new")
SETTINGS_ENV = "GREENLIGHT_SETTINGS"


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


@dataclass
class DeploySettings:
    """The ``[deploy]`` section with defaults for the embedded demo world."""
    hosts: list[Host]
    repo: str = "var/demo.git"
    branch: str = "main"
    canary_fraction: float = 0.05
    keep_releases: int = 5
    ledger_url: str = "sqlite:///var/deploy-ledger.sqlite"
    state_dir: str = "var/deploy"
    build: tuple[str, ...] = ()  # run in each new release dir on the host before it is finished
    migrate: tuple[str, ...] = ()  # run once, in an export of the commit, before any switch
    migrate_timeout: float = 600.0
    build_timeout: float = 600.0
    restart_timeout: float = 30.0
    health_timeout: float = 2.0
    health_retries: int = 20
    health_interval: float = 0.25
    # canary window's hard maximum: it ends sooner once every metric is decided or the
    # traffic has shown each min_effect (the window follows the traffic)
    observe_seconds: float = 900.0
    judge_interval: float = 1.0  # seconds between two judge.observe() calls
    final_observe_seconds: float = 0.0  # after all hosts: health must hold this long
    # an undecided window with no evidence of harm: pass (recorded as undecided) | fail
    on_window_end: str = "pass"
    parallel: int = 4  # hosts switched at once in the "rest" phase
    judge: dict[str, Any] = field(default_factory=dict)  # passed to Judge(settings) as is
    source: str = "<embedded default>"

    @property
    def lock_file(self) -> str:
        return os.path.join(self.state_dir, "deploy.lock")

    def canary_count(self) -> int:
        """ceil(fraction × hosts), at least one, never more than there are hosts."""
        n = len(self.hosts)
        if n == 0:
            return 0
        return max(1, min(n, math.ceil(self.canary_fraction * n - 1e-9)))


def demo_hosts(base: str, count: int, first_port: int) -> list[Host]:
    """The demo world: ``count`` local hosts under ``base`` serving on consecutive ports."""
    hosts = []
    for i in range(count):
        name = f"host{i + 1:02d}"
        port = first_port + i
        hosts.append(Host(
            name=name, transport="local", path=str(Path(base, name)), port=port,
            restart=("{python}", "-m", "greenlight.deploy.demo_hosts", "restart", "{path}",
                     "--port", "{port}"),
            health_url=f"http://127.0.0.1:{port}/health",
            metrics_url=f"http://127.0.0.1:{port}/metrics"))
    return hosts


def _get(section: dict, key: str, kind, default, where: str):
    value = section.get(key, default)
    if value is default:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SettingsError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}")
    return value


def _argv(section: dict, key: str, where: str) -> tuple[str, ...]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise SettingsError(f"{where}: `{key}` must be a list of strings (an argument list, "
                            f"no shell), got {value!r}")
    return tuple(value)


def host_from_table(table: dict, where: str) -> Host:
    name = _get(table, "name", str, None, where)
    if not name or not HOST_NAME_RE.match(name):
        raise SettingsError(f"{where}: host `name` must match {HOST_NAME_RE.pattern}, "
                            f"got {name!r}")
    transport = _get(table, "transport", str, "local", where)
    if transport not in ("local", "ssh"):
        raise SettingsError(f"{where}: host {name}: `transport` must be local or ssh, "
                            f"got {transport!r}")
    path = _get(table, "path", str, None, where)
    if not path:
        raise SettingsError(f"{where}: host {name}: `path` (its releases directory) is required")
    port = _get(table, "port", int, 0, where)
    address = _get(table, "address", str, "127.0.0.1", where)
    if not SSH_ADDRESS_RE.match(address):
        raise SettingsError(f"{where}: host {name}: `address` {address!r} is not a host name")
    user = _get(table, "user", str, "", where)
    if user and not SSH_USER_RE.match(user):
        raise SettingsError(f"{where}: host {name}: `user` {user!r} is not a user name")
    strict = _get(table, "strict_host_key_checking", str, "yes", where)
    if strict not in STRICT_VALUES:
        raise SettingsError(f"{where}: host {name}: `strict_host_key_checking` must be one of "
                            f"{STRICT_VALUES}, got {strict!r}")
    url_host = "127.0.0.1" if transport == "local" else address
    return Host(
        name=name, transport=transport,
        path=path if transport == "ssh" else str(Path(path).absolute()),
        port=port, restart=_argv(table, "restart", where),
        health_url=_get(table, "health_url", str, f"http://{url_host}:{port}/health", where),
        metrics_url=_get(table, "metrics_url", str, f"http://{url_host}:{port}/metrics", where),
        address=address, user=user, ssh_port=_get(table, "ssh_port", int, 22, where),
        identity_file=os.path.expanduser(_get(table, "identity_file", str, "", where)),
        known_hosts_file=os.path.expanduser(_get(table, "known_hosts_file", str, "", where)),
        strict_host_key_checking=strict,
        remote_python=_get(table, "remote_python", str, "python3", where))


EXTRA_FLOATS = ("migrate_timeout", "build_timeout", "restart_timeout", "health_timeout",
                "health_interval", "judge_interval", "final_observe_seconds")
EXTRA_INTS = ("health_retries", "parallel")


# The deploy's own keys decide these; the same keys in [deploy.judge] would be ignored.
JUDGE_KEYS_SET_BY_DEPLOY = {"max_window_s": "observe_seconds", "on_timeout": "on_window_end"}


def judge_table(section: dict, where: str) -> dict[str, Any]:
    """The table given to ``Judge.from_settings``: ``[deploy.judge]`` plus the section-level
    ``[[deploy.metrics]]`` and ``prometheus_url`` (either place, never both)."""
    judge = section.get("judge", {}) or {}
    if not isinstance(judge, dict):
        raise SettingsError(f"{where}: `judge` must be a table ([deploy.judge])")
    judge = dict(judge)
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


def settings_from_dict(section: dict, *, state_dir: str = "var", repo: str | None = None,
                       branch: str = "main", source: str = "<dict>") -> DeploySettings:
    """Build DeploySettings from a ``[deploy]`` table (the keys of the central settings schema
    plus the optional tuning keys listed in docs/deploy.md)."""
    where = f"{source} [deploy]"
    if not isinstance(section, dict):
        raise SettingsError(f"{where}: expected a table")
    hosts: list[Host] = []
    for i, table in enumerate(section.get("hosts", [])):
        hosts.append(host_from_table(table, f"{where} hosts[{i}]"))
    health_path = _get(section, "health_path", str, "/health", where)
    if not hosts:
        count = _get(section, "demo_hosts", int, 20, where)
        first_port = _get(section, "demo_first_port", int, 18100, where)
        hosts = demo_hosts(str(Path(state_dir, "hosts").absolute()), count, first_port)
        hosts = [Host(**{**h.__dict__, "health_url": f"http://127.0.0.1:{h.port}{health_path}"})
                 for h in hosts]
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise SettingsError(f"{where}: host names must be unique, got {names}")
    fraction = _get(section, "canary_fraction", float, 0.05, where)
    if not 0 < fraction <= 1:
        raise SettingsError(f"{where}: `canary_fraction` must be in (0, 1], got {fraction}")
    keep = _get(section, "keep_releases", int, 5, where)
    if keep < 2:
        raise SettingsError(f"{where}: `keep_releases` must be at least 2 (current and "
                            f"previous), got {keep}")
    on_end = _get(section, "on_window_end", str, "pass", where)
    if on_end not in ("fail", "pass"):
        raise SettingsError(f"{where}: `on_window_end` must be fail or pass, got {on_end!r}")
    judge = judge_table(section, where)
    defaults = DeploySettings(hosts=[])
    ledger_url = _get(section, "ledger_url", str, "sqlite:///{state_dir}/ledger.sqlite", where)
    ledger_url = ledger_url.replace("{state_dir}", str(Path(state_dir).absolute()))
    kw: dict[str, Any] = {}
    for key in EXTRA_FLOATS:
        kw[key] = _get(section, key, float, getattr(defaults, key), where)
    for key in EXTRA_INTS:
        kw[key] = _get(section, key, int, getattr(defaults, key), where)
    kw["observe_seconds"] = _get(section, "observe_seconds", float, 900.0, where)
    return DeploySettings(
        hosts=hosts, repo=repo or str(Path(state_dir, "repos", "demo.git")), branch=branch,
        canary_fraction=fraction, keep_releases=keep, ledger_url=ledger_url,
        state_dir=str(Path(state_dir, "deploy").absolute()),
        build=_argv(section, "build_command", where), migrate=_argv(section, "migrate_command",
                                                                    where),
        on_window_end=on_end, judge=judge, source=source, **kw)


def load_settings(path: str | None = None) -> DeploySettings:
    """The deploy settings from the central settings file (``--settings``, else
    $GREENLIGHT_SETTINGS, else the embedded default: 20 local demo hosts)."""
    from greenlight.settings import load

    central = load(path)
    return settings_from_dict(dict(central["deploy"]), state_dir=str(central.state_dir),
                              repo=central.repo_url,
                              branch=central["repository"]["deploy_branch"],
                              source=central.source)
