"""The master's workers: ``[workers] count`` local processes started by ``up`` and the
``[[workers.remote]]`` machines that connect on their own, and the port they connect to.

A remote entry names the worker, the file holding its password (the same file is given to
``greenlight worker create`` on that machine), how many builds it runs at once and extra
worker properties. The port listens on ``[master] worker_bind`` (default loopback); bound to
any other address without ``worker_tls_cert``/``worker_tls_key`` the worker passwords cross
the network in a form a listener can attack, so the master says so at every start.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

from greenlight.errors import SettingsError
from greenlight.settings import PROJECT_ROOT, Settings

from greenlight_master.secrets_store import read_or_create

log = logging.getLogger(__name__)
REMOTE_KEYS = {"name", "password_file", "max_builds", "properties"}


@dataclass(frozen=True)
class RemoteWorker:
    name: str
    password_file: Path
    max_builds: int = 1
    properties: dict = field(default_factory=dict)

    @property
    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise SettingsError(f"[[workers.remote]] {self.name}: cannot read password_file "
                                f"{self.password_file}: {exc.strerror}") from None


def remote_workers(settings: Settings) -> list[RemoteWorker]:
    """The ``[[workers.remote]]`` entries, checked (file, entry, key, what was expected)."""
    found, names = [], set(local_worker_names(settings))
    for index, entry in enumerate(settings["workers"]["remote"], 1):
        where = f"{settings.source}: [[workers.remote]] #{index}"

        def fail(message: str) -> None:
            raise SettingsError(f"{where}: {message}")

        unknown = set(entry) - REMOTE_KEYS
        if unknown:
            fail(f"unknown key(s) {', '.join(sorted(unknown))}; expected "
                 f"{', '.join(sorted(REMOTE_KEYS))}")
        name = entry.get("name")
        if not isinstance(name, str) or not name or not name.replace("-", "").replace(
                "_", "").isalnum():
            fail(f"name: expected letters, digits, '-' or '_', got {name!r}")
        if name in names:
            fail(f"name: {name!r} is used twice (local workers are {settings['workers']['name_prefix']}-N)")
        names.add(name)
        password_file = entry.get("password_file")
        if not isinstance(password_file, str) or not password_file:
            fail(f"password_file: expected a path, got {password_file!r}")
        max_builds = entry.get("max_builds", 1)
        if not isinstance(max_builds, int) or isinstance(max_builds, bool) or max_builds < 1:
            fail(f"max_builds: expected a whole number >= 1, got {max_builds!r}")
        properties = entry.get("properties", {})
        if not isinstance(properties, dict):
            fail(f"properties: expected a table, got {properties!r}")
        path = Path(settings.expand(password_file))
        found.append(RemoteWorker(name, path if path.is_absolute() else PROJECT_ROOT / path,
                                  max_builds, dict(properties)))
    if not names:
        raise SettingsError(f"{settings.source}: [workers] count = 0 and no [[workers.remote]]:"
                            " no worker would ever build")
    return found


def local_worker_names(settings: Settings) -> list[str]:
    prefix = settings["workers"]["name_prefix"]
    return [f"{prefix}-{i}" for i in range(1, settings["workers"]["count"] + 1)]


def all_worker_names(settings: Settings) -> list[str]:
    return local_worker_names(settings) + [w.name for w in remote_workers(settings)]


def local_password(settings: Settings) -> str:
    return read_or_create(settings.state_dir / "worker.secret")


def workers(settings: Settings) -> list:
    """Buildbot's worker objects, local ones first."""
    from buildbot.plugins import worker   # here: ``up`` reads this module without Buildbot

    password = local_password(settings)
    local = [worker.Worker(name, password, max_builds=1) for name in local_worker_names(settings)]
    return local + [worker.Worker(w.name, w.password, max_builds=w.max_builds,
                                  properties=w.properties) for w in remote_workers(settings)]


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def bind_warning(settings: Settings) -> str | None:
    """Why the worker port is exposed without TLS, or None."""
    master = settings["master"]
    if is_loopback(master["worker_bind"]) or (master["worker_tls_cert"]
                                              and master["worker_tls_key"]):
        return None
    return (f"the worker port {master['worker_port']} listens on {master['worker_bind']} "
            "without TLS: set [master] worker_tls_cert and worker_tls_key, or keep the port on "
            "a private network")


def pb_port(settings: Settings) -> str:
    """The strports description of the workers' port (TLS when a certificate is set)."""
    master = settings["master"]
    port, bind = master["worker_port"], master["worker_bind"]
    if bool(master["worker_tls_cert"]) != bool(master["worker_tls_key"]):
        raise SettingsError(f"{settings.source}: [master] worker_tls_cert and worker_tls_key: "
                            "give both or neither")
    warning = bind_warning(settings)
    if warning:
        from twisted.python import log as twisted_log

        log.warning("%s", warning)
        twisted_log.msg(f"WARNING: {warning}")
    if master["worker_tls_cert"]:
        cert = settings.path("master", "worker_tls_cert")
        key = settings.path("master", "worker_tls_key")
        return f"ssl:{port}:interface={bind}:privateKey={key}:certKey={cert}"
    return f"tcp:{port}:interface={bind}"
