"""Import a team's deploy history into the ledger, so incident reports can search it on day one.

Two sources: a file (JSON lines or CSV with ``sha, deployed_at`` and optional ``previous_sha,
environment, hosts, outcome``) and git itself (a branch's first-parent commits, or tags matching
a pattern, at their commit or tag time). Every row is checked first and every problem is
reported with its file:line; only a clean file is written, in one transaction, with one
multi-row insert per table (10,000 deploys take well under a second on SQLite). Rows already in
the ledger (same sha and time) are skipped and counted, so an import can be run again.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select

from greenlight.deploy.ledger import OUTCOMES, Ledger, deploys, host_releases
from greenlight.errors import UsageError
from greenlight.git.history import GitHistory
from greenlight.incidents.intake import parse_time
from greenlight.incidents.model import iso, utc

COLUMNS = ("sha", "deployed_at", "previous_sha", "environment", "hosts", "outcome")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_MAX_SHOWN = 20          # problems listed in full; the rest are counted


@dataclass(frozen=True)
class ImportedDeploy:
    """One deploy of the history, with where it came from (``file:line`` or ``git:ref``)."""

    sha: str
    deployed_at: datetime
    previous_sha: str | None = None
    environment: str = "production"
    hosts: tuple[str, ...] = ()
    outcome: str = "success"
    origin: str = ""


@dataclass
class ImportResult:
    inserted: int = 0
    skipped: int = 0                       # already in the ledger (same sha and time)
    host_rows: int = 0
    hosts_with_history: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "skipped": self.skipped, "host_rows": self.host_rows,
                "hosts_with_history": self.hosts_with_history,
                "first": iso(self.first), "last": iso(self.last)}


def _hosts(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list) and all(isinstance(h, str) for h in value):
        return tuple(h.strip() for h in value if h.strip())
    if isinstance(value, str):
        return tuple(h for h in re.split(r"[\s,;]+", value) if h)
    raise UsageError(f"{where}: hosts must be a list of names or a string 'web1 web2', "
                     f"got {value!r}")


def _fast_time(value: Any) -> datetime | None:
    """Plain ISO 8601 with an offset, the common case, without ``parse_time``'s detours."""
    if isinstance(value, str) and len(value) <= 32 and value[-1:] in ("Z", "0") and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment.astimezone(timezone.utc) if moment.tzinfo else None
    return None


def _row(data: dict[str, Any], where: str, now: datetime) -> ImportedDeploy:
    unknown = sorted(set(data) - set(COLUMNS))
    if unknown:
        raise UsageError(f"{where}: unknown column(s) {', '.join(unknown)}; expected "
                         f"{', '.join(COLUMNS)}")
    sha = str(data.get("sha") or "").strip()
    if not _SHA.match(sha):
        raise UsageError(f"{where}: sha {sha!r} is not a commit id (7 to 64 hex digits)")
    when = data.get("deployed_at")
    if when in (None, ""):
        raise UsageError(f"{where}: deployed_at is missing (ISO 8601 or epoch seconds)")
    moment = _fast_time(when)
    if moment is None:
        try:
            moment = parse_time(when, now=now)
        except UsageError as exc:
            raise UsageError(f"{where}: deployed_at: {exc}") from None
    if moment > now:
        raise UsageError(f"{where}: deployed_at {iso(moment)} is in the future")
    previous = str(data.get("previous_sha") or "").strip() or None
    if previous is not None and not _SHA.match(previous):
        raise UsageError(f"{where}: previous_sha {previous!r} is not a commit id")
    outcome = str(data.get("outcome") or "success").strip()
    if outcome not in OUTCOMES:
        raise UsageError(f"{where}: outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    environment = str(data.get("environment") or "production").strip()
    return ImportedDeploy(sha=sha.lower(), deployed_at=moment,
                          previous_sha=previous.lower() if previous else None,
                          environment=environment, hosts=_hosts(data.get("hosts"), where),
                          outcome=outcome, origin=where)


def _records(text: str, name: str) -> Iterable[tuple[str, Any]]:
    """(file:line, record) pairs from JSON lines or CSV, told apart by the first character."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, UsageError(f"{where}: not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(data, dict):
                yield where, UsageError(f"{where}: expected a JSON object per line")
                continue
            yield where, data
        return
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "sha" not in reader.fieldnames:
        raise UsageError(f"{name}:1: expected JSON lines or a CSV header naming sha and "
                         f"deployed_at (optional: previous_sha, environment, hosts, outcome)")
    for data in reader:
        where = f"{name}:{reader.line_num}"
        if None in data:
            yield where, UsageError(f"{where}: more fields than the header names")
            continue
        yield where, {k.strip(): v for k, v in data.items() if k is not None}


def parse_history(text: str, name: str = "<input>",
                  now: datetime | None = None) -> list[ImportedDeploy]:
    """Every row of a JSON-lines or CSV history; all problems at once, with file:line."""
    now = now or datetime.now(timezone.utc)
    rows, problems = [], []
    for where, record in _records(text, name):
        if isinstance(record, UsageError):
            problems.append(str(record))
            continue
        try:
            rows.append(_row(record, where, now))
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        shown = "\n".join(problems[:_MAX_SHOWN])
        more = f"\n… and {len(problems) - _MAX_SHOWN} more" if len(problems) > _MAX_SHOWN else ""
        raise UsageError(f"{len(problems)} problem(s) in {name}; nothing imported:\n"
                         f"{shown}{more}")
    if not rows:
        raise UsageError(f"{name}: no deploy in the file")
    return rows


def read_history(path: str | Path) -> list[ImportedDeploy]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_history(text, str(path))


def history_from_git(history: GitHistory, *, branch: str | None = None,
                     tags: str | None = None, since: datetime | None = None,
                     environment: str = "production") -> list[ImportedDeploy]:
    """A branch's first-parent commits at their commit times, or tags matching a glob at their
    tag times: the deploys a team that shipped every merge (or every tag) made."""
    if bool(branch) == bool(tags):
        raise UsageError("--from-git needs exactly one of --branch NAME or --tags PATTERN")
    points = (history.first_parent_line(branch, since) if branch
              else [p for p in history.tags(tags) if since is None or p.at >= since])
    if not points:
        what = f"branch {branch}" if branch else f"tags matching {tags!r}"
        raise UsageError(f"{history.path}: {what}: nothing to import")
    origin = f"git:{branch}" if branch else "git:tags"
    return [ImportedDeploy(sha=p.sha, deployed_at=p.at, previous_sha=p.previous,
                           environment=environment,
                           origin=f"{origin}:{p.name or p.sha[:12]}") for p in points]


def _naive(moment: datetime) -> datetime:
    return utc(moment).replace(tzinfo=None)


def import_deploys(ledger: Ledger, rows: list[ImportedDeploy],
                   source: str = "import") -> ImportResult:
    """Write ``rows`` into the ledger in one transaction; rows already there are skipped.

    A row without ``previous_sha`` takes the sha of the row before it in the same environment
    (the file is a history). Host releases are recorded for hosts the ledger knows nothing of
    yet; a host with release history of its own keeps it untouched (named in the result).
    """
    result = ImportResult()
    ordered = [row for _, row in sorted(enumerate(rows), key=lambda p: (p[1].deployed_at, p[0]))]
    last_by_env: dict[str, str] = {}
    values, seen = [], set()
    details: dict[str, str] = {}           # environment -> its JSON, made once
    host_lists: dict[tuple[str, ...], str] = {}
    with ledger.engine.begin() as conn:
        existing = {(sha, when) for sha, when in conn.execute(
            select(deploys.c.sha, deploys.c.started_at))}
        known_hosts = {h for (h,) in conn.execute(select(host_releases.c.host).distinct())}
        for row in ordered:
            key = (row.sha, _naive(row.deployed_at))
            previous = row.previous_sha or last_by_env.get(row.environment)
            last_by_env[row.environment] = row.sha
            if key in existing or key in seen:
                result.skipped += 1
                continue
            seen.add(key)
            if row.environment not in details:
                details[row.environment] = json.dumps({"environment": row.environment})
            if row.hosts not in host_lists:
                host_lists[row.hosts] = json.dumps(list(row.hosts))
            values.append({"sha": row.sha, "previous_sha": previous, "branch": None,
                           "commits": "[]", "trigger": source, "kind": "deploy",
                           "hosts": host_lists[row.hosts], "started_at": key[1],
                           "finished_at": key[1], "outcome": row.outcome,
                           "detail": details[row.environment]})
        if values:
            conn.execute(deploys.insert(), values)
            inserted = conn.execute(
                select(deploys.c.id, deploys.c.sha, deploys.c.started_at)
                .where(deploys.c.trigger == source,
                       deploys.c.started_at >= values[0]["started_at"],
                       deploys.c.started_at <= values[-1]["started_at"])).all()
            ids = {(r.sha, r.started_at): r.id for r in inserted}
            releases = _host_rows(values, ids, known_hosts, result)
            if releases:
                conn.execute(host_releases.insert(), releases)
    result.inserted = len(values)
    if values:
        result.first = utc(values[0]["started_at"])
        result.last = utc(values[-1]["started_at"])
    return result


def _host_rows(values: list[dict[str, Any]], ids: dict, known_hosts: set[str],
               result: ImportResult) -> list[dict[str, Any]]:
    """Release history per host: each deploy's release serves until the host's next one."""
    open_rows: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    hosts_of = {text: json.loads(text) for text in {v["hosts"] for v in values}}
    skipped_hosts: set[str] = set()
    for value in values:
        if value["outcome"] not in ("success", "superseded"):
            continue
        for host in hosts_of[value["hosts"]]:
            if host in known_hosts:
                skipped_hosts.add(host)
                continue
            if host in open_rows:
                open_rows[host]["until"] = value["started_at"]
            row = {"host": host, "release": value["sha"], "since": value["started_at"],
                   "until": None, "deploy_id": ids.get((value["sha"], value["started_at"]))}
            open_rows[host] = row
            rows.append(row)
    result.host_rows = len(rows)
    result.hosts_with_history = sorted(skipped_hosts)
    return rows
