"""Greenlight's one settings file: a declarative TOML file, validated against a schema.

The embedded default needs no file at all (the demo world: SQLite, local workers, the demo repo).
A wrong setting fails at start with the file, the line, the key and what was expected.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from greenlight.errors import SettingsError

# plugins/greenlight/settings.py -> the checkout's root (relative paths resolve from there).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Key:
    """One setting: its expected kind (checked), default and a sentence for error messages."""

    check: Callable[[Any], bool]
    expected: str
    default: Any = None


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_port(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _percent(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _nonempty_str_list(v: Any) -> bool:
    return _str_list(v) and len(v) > 0


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _roles_map(v: Any) -> bool:
    return isinstance(v, dict) and all(_str_list(r) for r in v.values())


def _table_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


def _table(v: Any) -> bool:
    return isinstance(v, dict)


# A section's "*" entry: the keys not listed are its engine's to check (kept as given).
ENGINE_KEYS = object()

BRANCH_RE = re.compile(r"^[^\x00-\x20~^:?*\[\\]+$")

# The schema: section -> key -> Key. Engines' sections list the keys their adapters read.
SCHEMA: dict[str, dict[str, Key]] = {
    "greenlight": {
        "state_dir": Key(_is_str, "a directory path (relative to the project root)", "var"),
        "title": Key(_is_str, "a string", "Greenlight"),
    },
    "master": {
        "basedir": Key(_is_str, "the master's base directory (relative to the project root)",
                       "master"),
        "web_port": Key(_is_port, "a TCP port number 1-65535", 8010),
        "worker_port": Key(_is_port, "a TCP port number 1-65535", 9989),
        "db_url": Key(_is_str, "an SQLAlchemy URL", "sqlite:///state.sqlite"),
        "buildbot_url": Key(_is_str, "a URL ending with /", ""),
        "worker_bind": Key(_is_str, "the address workers connect to (0.0.0.0: every "
                           "interface)", "127.0.0.1"),
        "worker_tls_cert": Key(_is_str, "a PEM certificate file for the worker port", ""),
        "worker_tls_key": Key(_is_str, "the PEM private key of worker_tls_cert", ""),
    },
    "repository": {
        "name": Key(_is_str, "a string", "demo"),
        "url": Key(_is_str, "a git URL or path (default: the demo bare repo)", ""),
        "branches": Key(_nonempty_str_list, "a non-empty list of branch names", ["main"]),
        "deploy_branch": Key(_is_str, "a branch name", "main"),
        "poll_interval": Key(_non_negative_int, "seconds (0 = rely on the push hook)", 0),
    },
    "workers": {
        "count": Key(_non_negative_int, "a whole number >= 0 (0: remote workers only)", 2),
        "name_prefix": Key(_is_str, "a string", "local-worker"),
        "remote": Key(_table_list, "[[workers.remote]] tables: name, password_file, "
                      "max_builds, properties", []),
    },
    "verify": {
        "setup_command": Key(_str_list, "a list of strings (argv)",
                             ["{python}", "-m", "greenlight.worker.venv", "--requirements",
                              "requirements.txt", "--cache", "{state_dir}/worker-venvs",
                              "--link", ".venv"]),
        "test_command": Key(_nonempty_str_list, "a non-empty list of strings (argv)",
                            [".venv/bin/python", "-m", "pytest", "-n", "auto", "-q",
                             "-p", "no:cacheprovider"]),
        "junit_file": Key(_is_str, "a file name", "junit.xml"),
        "timeout": Key(_positive_int, "seconds >= 1", 1200),
        "collapse": Key(_is_bool, "true or false", True),
    },
    "auth": {
        "password_file": Key(_is_str, "a path to a Greenlight password file",
                             "{state_dir}/passwords"),
        "roles": Key(_roles_map, "a table: user = [role, ...]",
                     {"admin": ["engineers", "schema-reviewers", "deployers", "experimenters"],
                      "dev": ["engineers"], "viewer": []}),
    },
    "change_hook": {
        "username": Key(_is_str, "a string", "greenlight-hook"),
        "password_file": Key(_is_str, "a path to a file holding the hook's password",
                             "{state_dir}/change-hook.secret"),
    },
    "webhooks": {
        "secret_file": Key(_is_str, "a file holding the forges' webhook secret ('' = off)", ""),
        "status_forge": Key(_one_of("", "github", "gitlab"), '"github", "gitlab" or "" (no '
                            "commit statuses)", ""),
        "status_token_file": Key(_is_str, "a file holding the forge API token for statuses",
                                 ""),
        "status_base_url": Key(_is_str, "the forge API's base URL ('' = the public one)", ""),
    },
    "coverage": {
        "enabled": Key(_is_bool, "true or false", True),
        "fail_under": Key(_percent, "a percentage 0-100", 100.0),
    },
    "schema": {
        "enabled": Key(_is_bool, "true or false", True),
        "dialect": Key(_one_of("mysql", "mariadb", "postgres"), "mysql, mariadb or postgres",
                       "mariadb"),
        "migrations_dir": Key(_is_str, "a directory inside the repository", "migrations"),
        "sizes_file": Key(_is_str, "a sizes JSON file inside the repository", "schema_sizes.json"),
        "db_url": Key(_is_str, "an SQLAlchemy URL of the live database", ""),
        "server_version": Key(_is_str, "a version such as 10.11 or 8.0.36", ""),
        "large_rows": Key(_non_negative_int, "a whole number of rows", 1_000_000),
        "large_bytes": Key(_non_negative_int, "a whole number of bytes", 1_073_741_824),
        "approvals_url": Key(_is_str, "an SQLAlchemy URL",
                             "sqlite:///{state_dir}/schema-approvals.sqlite"),
    },
    "shards": {
        # "auto": one shard per worker when [[workers.remote]] puts workers on more than one
        # machine; local workers only = no fan-out (greenlight.shards.fanout.shard_layout).
        "count": Key(lambda v: v == "auto" or _non_negative_int(v),
                     '"auto" (one shard per worker) or a whole number (0 or 1 = no fan-out)',
                     "auto"),
        # "auto" fans a build out only when its suite is predicted to take this long: each
        # shard build pays a fixed start-up that a short suite does not earn back.
        "min_suite_seconds": Key(lambda v: _number(v) and v >= 0,
                                 "seconds >= 0 (predicted suite time from which \"auto\" fans "
                                 "out; 0 = always)", 30),
        "group_by_module": Key(_is_bool, "true or false", False),
        "flaky_fails_build": Key(_is_bool, "true or false", False),
        "durations_url": Key(_is_str, "an SQLAlchemy URL (durations store + flaky ledger)",
                             "sqlite:///{state_dir}/durations.sqlite"),
    },
    "deploy": {
        # The deploy engine parses the rest of [deploy] itself, once, with file:line errors
        # (greenlight.deploy.hosts.DeploySettings.from_section); only what another engine
        # reads (the incident engine reads the ledger) is checked here.
        "*": ENGINE_KEYS,
        "ledger_url": Key(_is_str, "an SQLAlchemy URL", "sqlite:///{state_dir}/ledger.sqlite"),
    },
    "incidents": {
        "link_preset": Key(_one_of("", "github", "gitlab", "gitea", "cgit"),
                           "one of github, gitlab, gitea, cgit or empty", ""),
        "web_url": Key(_is_str, "the repository's web URL", ""),
        "window": Key(_is_str, "a duration such as 6h", "6h"),
        # How far back blame may attribute a trace line to the deploy that shipped it.
        "horizon": Key(_is_str, "a duration such as 365d", "365d"),
        # Commits blame sees through (formatting, renames), beside .git-blame-ignore-revs.
        "mechanical_commits": Key(_str_list, "a list of commit shas", []),
        # Link templates overriding the preset: {url} {sha} {short} {base} {path} {line}.
        "commit_url": Key(_is_str, "a URL template such as {url}/commit/{sha}", ""),
        "compare_url": Key(_is_str, "a URL template such as {url}/compare/{base}...{sha}", ""),
        "blame_url": Key(_is_str, "a URL template such as {url}/blame/{sha}/{path}#L{line}", ""),
    },
    "experiments": {
        "db_url": Key(_is_str, "an SQLAlchemy URL",
                      "sqlite:///{state_dir}/experiments.sqlite"),
    },
}


class Settings:
    """Validated settings with defaults filled in; ``settings["verify"]["timeout"]``."""

    def __init__(self, data: dict[str, dict[str, Any]], source: str, text: str = ""):
        self._data = data
        self.source = source
        self.text = text

    def where(self, *path: str | int) -> str:
        """``file:line`` of a setting for error messages: ``where("deploy", "hosts", 2,
        "port")`` is the ``port`` of the third ``[[deploy.hosts]]`` (the file alone when the
        line is unknown, e.g. a default)."""
        line = line_of(self.text, path) if self.text else None
        return f"{self.source}:{line}" if line else self.source

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._data[section]

    @property
    def state_dir(self) -> Path:
        path = Path(self._data["greenlight"]["state_dir"])
        return path if path.is_absolute() else PROJECT_ROOT / path

    def expand(self, value: str) -> str:
        """Fill ``{state_dir}``, ``{python}`` and ``{project}`` placeholders in a setting."""
        import sys

        return value.format(state_dir=self.state_dir, python=sys.executable,
                            project=PROJECT_ROOT)

    def path(self, section: str, key: str) -> Path:
        path = Path(self.expand(self._data[section][key]))
        return path if path.is_absolute() else PROJECT_ROOT / path

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dict(v) for s, v in self._data.items()}

    @property
    def demo_repo_path(self) -> Path:
        """The bare repository ``up`` creates when no ``[repository] url`` is set."""
        return self.state_dir / "repos" / f"{self._data['repository']['name']}.git"

    @property
    def repo_url(self) -> str:
        """The watched repository: ``[repository] url``, else the demo's bare repository."""
        return self._data["repository"]["url"] or str(self.demo_repo_path)

    @property
    def web_url(self) -> str:
        """Where the Buildbot UI answers (``[master] buildbot_url`` or the local web port)."""
        return (self._data["master"]["buildbot_url"]
                or f"http://127.0.0.1:{self._data['master']['web_port']}/")


def line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """Best-effort line of a setting in a TOML text (tomllib gives none): ``path`` is table
    names, array-of-tables indices and a key, e.g. ``("deploy", "hosts", 2, "port")``; the
    nearest enclosing table header when the key itself is not on a line of its own."""
    path = tuple(path)
    headers: dict[tuple, int] = {}
    seen: dict[tuple, int] = {}
    current: tuple = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            names = tuple(n.strip().strip('"') for n in header.group(2).split("."))
            if header.group(1) == "[[":
                seen[names] = seen.get(names, -1) + 1
                names = (*names, seen[names])
            current = names
            headers.setdefault(current, number)
            continue
        key = path[-1] if path else None
        if (isinstance(key, str) and current == path[:-1]
                and re.match(rf'^"?{re.escape(key)}"?\s*=', stripped)):
            return number
    for size in range(len(path), 0, -1):
        if path[:size] in headers:
            return headers[path[:size]]
    return None


def problems(raw: dict[str, Any], source: str = "<defaults>", text: str = ""
             ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every problem of ``raw`` against SCHEMA (each ``file:line: [section] key: what``), and
    the data with defaults filled where the file was right."""
    found: list[tuple[int, str]] = []

    def fail(section: str, key: str | None, message: str) -> None:
        line = line_of(text, (section, key) if key else (section,)) if text else None
        where = f"{source}:{line}" if line else source
        name = f"[{section}] {key}" if key else f"[{section}]"
        found.append((line or 0, f"{where}: {name}: {message}"))

    data: dict[str, dict[str, Any]] = {}
    for section, value in raw.items():
        if section not in SCHEMA:
            fail(section, None, f"unknown section; expected one of {', '.join(SCHEMA)}")
        elif not isinstance(value, dict):
            fail(section, None, "expected a table of settings")
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        given = given if isinstance(given, dict) else {}
        engine_keys = keys.get("*") is ENGINE_KEYS
        for key in given:
            if key not in keys and not engine_keys:
                fail(section, key, f"unknown key; expected one of {', '.join(keys)}")
        data[section] = {k: _copy(v) for k, v in given.items() if k not in keys}
        for key, spec in keys.items():
            if key == "*":
                continue
            if key in given and spec.check(given[key]):
                data[section][key] = given[key]
            else:
                if key in given:
                    fail(section, key, f"expected {spec.expected}, got {given[key]!r}")
                data[section][key] = _copy(spec.default)
    for branch in data["repository"]["branches"] + [data["repository"]["deploy_branch"]]:
        if not BRANCH_RE.match(branch):
            fail("repository", "branches", f"not a valid branch name: {branch!r}")
    if data["master"]["web_port"] == data["master"]["worker_port"]:
        fail("master", "worker_port", "must differ from web_port")
    return data, [message for _, message in sorted(found, key=lambda item: item[0])]


def validate(raw: dict[str, Any], source: str = "<defaults>", text: str = "") -> Settings:
    """Check every section and key against SCHEMA and fill defaults; a wrong file raises one
    SettingsError listing every problem, one per line."""
    data, found = problems(raw, source, text)
    if found:
        raise SettingsError("\n".join(found))
    return Settings(data, source, text)


def _copy(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        import copy

        return copy.deepcopy(value)
    return value


# Where ``greenlight up`` records the settings file the master runs with, so every CLI verb
# started later without --settings or $GREENLIGHT_SETTINGS reads the same file.
ACTIVE_POINTER = PROJECT_ROOT / "var" / "active-settings"


def remember_active(path: str | os.PathLike | None) -> None:
    """Record (or, for the embedded defaults, forget) the settings file the master runs with."""
    if path is None:
        forget_active()
        return
    ACTIVE_POINTER.parent.mkdir(parents=True, exist_ok=True)
    tmp = ACTIVE_POINTER.with_suffix(f".{os.getpid()}")
    tmp.write_text(str(Path(path).resolve()) + "\n", encoding="utf-8")
    os.replace(tmp, ACTIVE_POINTER)


def forget_active() -> None:
    ACTIVE_POINTER.unlink(missing_ok=True)


def active_path() -> Path | None:
    """The settings file ``up`` last started the master with, if it still exists."""
    try:
        recorded = ACTIVE_POINTER.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(recorded) if recorded and Path(recorded).is_file() else None


def resolve_path(path: str | os.PathLike | None = None) -> Path | None:
    """Which settings file applies: ``path``, else $GREENLIGHT_SETTINGS, else the one the
    running master was started with, else none (the embedded defaults)."""
    chosen = path or os.environ.get("GREENLIGHT_SETTINGS") or active_path()
    return Path(chosen) if chosen else None


def read(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """The parsed TOML of a settings file and its text (for line numbers)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{file}: cannot read settings file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from None


def load(path: str | os.PathLike | None = None) -> Settings:
    """Load the settings that apply (see ``resolve_path``); none = the embedded defaults."""
    file = resolve_path(path)
    if file is None:
        return validate({})
    raw, text = read(file)
    return validate(raw, str(file), text)
