"""The deploy ledger: every deploy, its phase events, what was live where and when.

Kept in a database through SQLAlchemy Core (SQLite by default, PostgreSQL by URL) because the
incident correlation reads it long after the deploy process is gone, possibly from another
machine. Times are stored as naive UTC and returned as timezone-aware UTC datetimes.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Engine

from greenlight.db import create_tables, open_engine
from greenlight.errors import GreenlightError

DEFAULT_LEDGER_URL = "sqlite:///var/deploy-ledger.sqlite"

#: Outcomes a deploy ends with; ``running`` while in progress (or when its process died).
OUTCOMES = ("running", "success", "rolled_back", "failed", "aborted", "interrupted", "superseded")

metadata = MetaData()

deploys = Table(
    "gl_deploys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha", String(64), nullable=False, index=True),
    Column("previous_sha", String(64)),
    Column("branch", String(255)),
    Column("commits", Text, nullable=False, default="[]"),  # JSON list of shas in previous..sha
    Column("trigger", String(255)),
    Column("kind", String(32), nullable=False, default="deploy"),  # deploy | rollback | recovery
    Column("hosts", Text, nullable=False, default="[]"),  # JSON list of host names
    Column("started_at", DateTime, nullable=False, index=True),
    Column("finished_at", DateTime),
    Column("outcome", String(32), nullable=False, default="running"),
    Column("detail", Text),
)

deploy_events = Table(
    "gl_deploy_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deploy_id", Integer, ForeignKey("gl_deploys.id"), nullable=False, index=True),
    Column("phase", String(64), nullable=False),
    Column("host", String(255)),
    Column("release", String(64)),
    Column("at", DateTime, nullable=False),
    Column("data", Text, nullable=False, default="{}"),  # JSON: metric values, verdict, errors
)

host_releases = Table(
    "gl_host_releases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host", String(255), nullable=False, index=True),
    Column("release", String(64), nullable=False),
    Column("deploy_id", Integer, ForeignKey("gl_deploys.id")),
    Column("since", DateTime, nullable=False),
    Column("until", DateTime),  # NULL while still live
)

bad_releases = Table(
    "gl_bad_releases", metadata,
    Column("sha", String(64), primary_key=True),
    Column("deploy_id", Integer, ForeignKey("gl_deploys.id")),
    Column("marked_at", DateTime, nullable=False),
    Column("reason", Text),
)

incidents = Table(
    "gl_incident_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deploy_id", Integer, ForeignKey("gl_deploys.id")),
    Column("sha", String(64)),
    Column("opened_at", DateTime, nullable=False),
    Column("source", String(64), nullable=False, default="deploy"),
    Column("summary", Text, nullable=False),
    Column("data", Text, nullable=False, default="{}"),  # JSON: failing metrics, judge table
    Column("status", String(32), nullable=False, default="open"),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _to_db(moment: datetime | float | None) -> datetime | None:
    """Normalise to naive UTC for storage; floats are epoch seconds, naive datetimes are UTC."""
    if moment is None:
        return None
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None)
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _from_db(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass
class DeployEvent:
    """One phase event: a host switched, a judge verdict, an error."""
    id: int
    deploy_id: int
    phase: str
    host: str | None
    release: str | None
    at: datetime
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = _iso(self.at)
        return out


@dataclass
class DeployRecord:
    """One deploy (or rollback) as the incident correlation sees it."""
    id: int
    sha: str
    previous_sha: str | None
    branch: str | None
    commits: list[str]
    trigger: str | None
    kind: str
    hosts: list[str]
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    detail: str | None = None
    events: list[DeployEvent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "events"}
        out["started_at"] = _iso(self.started_at)
        out["finished_at"] = _iso(self.finished_at)
        out["events"] = [e.to_json() for e in self.events]
        return out


@dataclass
class IncidentRequest:
    """An incident the deploy asked for (judge failure); the incident engine builds the report."""
    id: int
    deploy_id: int | None
    sha: str | None
    opened_at: datetime
    source: str
    summary: str
    data: dict[str, Any]
    status: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["opened_at"] = _iso(self.opened_at)
        return out


class Ledger:
    """Read and write the deploy ledger at ``url`` (an SQLAlchemy URL; tables created on open)."""

    def __init__(self, url: str = DEFAULT_LEDGER_URL, engine: Engine | None = None):
        self.url = url
        if engine is None:
            engine = open_engine(url, what="deploy ledger",
                                 example="sqlite:///var/deploy-ledger.sqlite or "
                                         "postgresql://user@host/db")
        self.engine = engine
        create_tables(metadata, self.engine, what="deploy ledger")

    def close(self) -> None:
        self.engine.dispose()

    # ---- writing -------------------------------------------------------------------------
    def start_deploy(self, sha: str, previous_sha: str | None, *, branch: str | None = None,
                     commits: Iterable[str] = (), trigger: str | None = None,
                     hosts: Iterable[str] = (), kind: str = "deploy",
                     at: datetime | float | None = None) -> int:
        """Open a deploy row (outcome ``running``) and return its id."""
        with self.engine.begin() as conn:
            result = conn.execute(deploys.insert().values(
                sha=sha, previous_sha=previous_sha, branch=branch,
                commits=json.dumps(list(commits)), trigger=trigger, kind=kind,
                hosts=json.dumps(list(hosts)), started_at=_to_db(at or utcnow()),
                outcome="running"))
            return int(result.inserted_primary_key[0])

    def finish_deploy(self, deploy_id: int, outcome: str, detail: str | None = None,
                      at: datetime | float | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown deploy outcome {outcome!r}; expected one of {OUTCOMES}")
        with self.engine.begin() as conn:
            conn.execute(deploys.update().where(deploys.c.id == deploy_id).values(
                outcome=outcome, detail=detail, finished_at=_to_db(at or utcnow())))

    def record_event(self, deploy_id: int, phase: str, *, host: str | None = None,
                     release: str | None = None, data: dict[str, Any] | None = None,
                     at: datetime | float | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(deploy_events.insert().values(
                deploy_id=deploy_id, phase=phase, host=host, release=release,
                at=_to_db(at or utcnow()), data=json.dumps(data or {}, default=str)))
            return int(result.inserted_primary_key[0])

    def record_host_release(self, host: str, release: str, deploy_id: int | None = None,
                            at: datetime | float | None = None) -> None:
        """Note that ``host`` serves ``release`` from ``at`` on (closing its previous row)."""
        moment = _to_db(at or utcnow())
        with self.engine.begin() as conn:
            open_row = conn.execute(
                select(host_releases.c.id, host_releases.c.release)
                .where(host_releases.c.host == host, host_releases.c.until.is_(None))
            ).first()
            if open_row is not None and open_row.release == release:
                return
            conn.execute(host_releases.update()
                         .where(host_releases.c.host == host, host_releases.c.until.is_(None))
                         .values(until=moment))
            conn.execute(host_releases.insert().values(host=host, release=release,
                                                       deploy_id=deploy_id, since=moment))

    def mark_bad(self, sha: str, deploy_id: int | None = None, reason: str = "") -> None:
        """Mark a release bad: a rollback never chooses it again."""
        with self.engine.begin() as conn:
            exists = conn.execute(select(bad_releases.c.sha)
                                  .where(bad_releases.c.sha == sha)).first()
            if exists is None:
                conn.execute(bad_releases.insert().values(
                    sha=sha, deploy_id=deploy_id, marked_at=_to_db(utcnow()), reason=reason))

    def record_incident(self, summary: str, *, deploy_id: int | None = None,
                        sha: str | None = None, data: dict[str, Any] | None = None,
                        source: str = "deploy", at: datetime | float | None = None) -> int:
        """Record an incident request (e.g. the judge rolled a canary back); returns its id."""
        with self.engine.begin() as conn:
            result = conn.execute(incidents.insert().values(
                deploy_id=deploy_id, sha=sha, opened_at=_to_db(at or utcnow()), source=source,
                summary=summary, data=json.dumps(data or {}, default=str), status="open"))
            return int(result.inserted_primary_key[0])

    def set_incident_status(self, incident_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(incidents.update().where(incidents.c.id == incident_id)
                         .values(status=status))

    # ---- reading -------------------------------------------------------------------------
    def deploy(self, deploy_id: int) -> DeployRecord:
        """One deploy with its events, oldest event first; GreenlightError if unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(select(deploys).where(deploys.c.id == deploy_id)).first()
            if row is None:
                raise GreenlightError(f"deploy {deploy_id} is not in the ledger at {self.url}")
            record = _deploy_from_row(row)
            record.events = [_event_from_row(r) for r in conn.execute(
                select(deploy_events).where(deploy_events.c.deploy_id == deploy_id)
                .order_by(deploy_events.c.at, deploy_events.c.id))]
        return record

    def deploys_between(self, start: datetime | float, end: datetime | float,
                        with_events: bool = False) -> list[DeployRecord]:
        """Deploys active at any moment of [start, end] (started before end, not finished
        before start), oldest first."""
        lo, hi = _to_db(start), _to_db(end)
        query = (select(deploys)
                 .where(deploys.c.started_at <= hi,
                        or_(deploys.c.finished_at.is_(None), deploys.c.finished_at >= lo))
                 .order_by(deploys.c.started_at, deploys.c.id))
        with self.engine.connect() as conn:
            records = [_deploy_from_row(r) for r in conn.execute(query)]
        if with_events:
            records = [self.deploy(r.id) for r in records]
        return records

    def list_deploys(self, limit: int = 20) -> list[DeployRecord]:
        """Newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deploys).order_by(deploys.c.started_at.desc(),
                                                         deploys.c.id.desc()).limit(limit))
            return [_deploy_from_row(r) for r in rows]

    def last_deploy(self, outcome: str | None = None, kind: str | None = None
                    ) -> DeployRecord | None:
        query = select(deploys)
        if outcome:
            query = query.where(deploys.c.outcome == outcome)
        if kind:
            query = query.where(deploys.c.kind == kind)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(deploys.c.started_at.desc(),
                                              deploys.c.id.desc()).limit(1)).first()
        return _deploy_from_row(row) if row is not None else None

    def unfinished_deploys(self) -> list[DeployRecord]:
        """Deploys still marked running: their process died (callers hold the deploy lock)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deploys).where(deploys.c.outcome == "running")
                                .order_by(deploys.c.id))
            return [_deploy_from_row(r) for r in rows]

    def live_at(self, moment: datetime | float) -> dict[str, str]:
        """Host name -> release sha live on it at ``moment``."""
        at = _to_db(moment)
        query = select(host_releases.c.host, host_releases.c.release).where(
            and_(host_releases.c.since <= at,
                 or_(host_releases.c.until.is_(None), host_releases.c.until > at))
        ).order_by(host_releases.c.since, host_releases.c.id)
        with self.engine.connect() as conn:
            return {row.host: row.release for row in conn.execute(query)}

    def host_history(self, host: str) -> list[dict[str, Any]]:
        query = (select(host_releases).where(host_releases.c.host == host)
                 .order_by(host_releases.c.since, host_releases.c.id))
        with self.engine.connect() as conn:
            return [{"host": r.host, "release": r.release, "deploy_id": r.deploy_id,
                     "since": _iso(_from_db(r.since)), "until": _iso(_from_db(r.until))}
                    for r in conn.execute(query)]

    def bad_releases(self) -> dict[str, str]:
        """Bad release sha -> reason."""
        with self.engine.connect() as conn:
            return {r.sha: r.reason or "" for r in conn.execute(select(bad_releases))}

    def is_bad(self, sha: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(bad_releases)
                                .where(bad_releases.c.sha == sha)).scalar_one() > 0

    def incidents(self, status: str | None = None) -> list[IncidentRequest]:
        query = select(incidents).order_by(incidents.c.opened_at, incidents.c.id)
        if status:
            query = query.where(incidents.c.status == status)
        with self.engine.connect() as conn:
            return [IncidentRequest(id=r.id, deploy_id=r.deploy_id, sha=r.sha,
                                    opened_at=_from_db(r.opened_at), source=r.source,
                                    summary=r.summary, data=json.loads(r.data or "{}"),
                                    status=r.status)
                    for r in conn.execute(query)]


def _deploy_from_row(row) -> DeployRecord:
    return DeployRecord(id=row.id, sha=row.sha, previous_sha=row.previous_sha, branch=row.branch,
                        commits=json.loads(row.commits or "[]"), trigger=row.trigger,
                        kind=row.kind, hosts=json.loads(row.hosts or "[]"),
                        started_at=_from_db(row.started_at),
                        finished_at=_from_db(row.finished_at), outcome=row.outcome,
                        detail=row.detail)


def _event_from_row(row) -> DeployEvent:
    return DeployEvent(id=row.id, deploy_id=row.deploy_id, phase=row.phase, host=row.host,
                       release=row.release, at=_from_db(row.at),
                       data=json.loads(row.data or "{}"))
