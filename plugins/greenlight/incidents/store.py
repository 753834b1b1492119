"""Incidents kept in the ledger's database (SQLAlchemy Core), so reports outlive the process.

One table, ``gl_incidents``: what came in (title, start, source, trace, evidence), the last
report as JSON, and the team's saved 5 Whys answers. It sits next to the ledger's tables; the
ledger's own ``gl_incident_requests`` are the deploy engine's asks, linked by ``request_id``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.engine import Engine

from greenlight.db import create_tables, open_engine
from greenlight.errors import UsageError
from greenlight.incidents.model import Incident, utc

metadata = MetaData()

incidents = Table(
    "gl_incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("started_at", DateTime, nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("service", String(255)),
    Column("trace", Text),
    Column("evidence", Text, nullable=False, default="{}"),   # JSON
    Column("report", Text),                                   # JSON of the last report
    Column("whys", Text, nullable=False, default="[]"),       # JSON list of 5 answers
    Column("request_id", Integer),                            # gl_incident_requests.id
    Column("created_at", DateTime, nullable=False),
)


def _naive(moment: datetime) -> datetime:
    return utc(moment).replace(tzinfo=None)


class IncidentStore:
    """Save, list and read incidents; pass the ledger's URL (or engine) to share its database."""

    def __init__(self, url: str | None = None, engine: Engine | None = None):
        if engine is None:
            if not url:
                raise UsageError("no database for incidents: pass --ledger URL")
            engine = open_engine(url, what="incident database")
        self.engine = engine
        create_tables(metadata, engine, what="incident table")

    def save(self, incident: Incident, report: dict[str, Any] | None = None,
             request_id: int | None = None) -> int:
        """Insert (no id) or update (id set) an incident; returns its id."""
        values = dict(title=incident.title, started_at=_naive(incident.started_at),
                      source=incident.source, service=incident.service, trace=incident.trace,
                      evidence=json.dumps(incident.evidence, default=str),
                      whys=json.dumps(list(incident.whys)))
        if report is not None:
            values["report"] = json.dumps(report, default=str)
        with self.engine.begin() as conn:
            if incident.id is None:
                values.update(created_at=datetime.now(timezone.utc).replace(tzinfo=None),
                              request_id=request_id)
                result = conn.execute(incidents.insert().values(**values))
                incident.id = int(result.inserted_primary_key[0])
            else:
                done = conn.execute(incidents.update().where(incidents.c.id == incident.id)
                                    .values(**values))
                if done.rowcount == 0:
                    raise UsageError(f"incident {incident.id} does not exist")
        return incident.id

    def get(self, incident_id: int) -> Incident:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise UsageError(f"incident {incident_id} does not exist; `greenlight incident "
                             f"list` shows the known ones")
        return _incident(row)

    def report(self, incident_id: int) -> dict[str, Any] | None:
        """The last saved report (JSON form) of an incident, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents.c.report)
                               .where(incidents.c.id == incident_id)).first()
        if row is None:
            raise UsageError(f"incident {incident_id} does not exist")
        return json.loads(row.report) if row.report else None

    def list(self, limit: int = 50) -> list[Incident]:
        """Newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(incidents).order_by(incidents.c.started_at.desc(),
                                                           incidents.c.id.desc()).limit(limit))
            return [_incident(r) for r in rows]

    def by_request(self, request_id: int) -> Incident | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents)
                               .where(incidents.c.request_id == request_id)).first()
        return _incident(row) if row is not None else None

    def save_whys(self, incident_id: int, answers: list[str]) -> None:
        """Store the team's 5 Whys answers (at most five; why #1 defaults to the alert)."""
        if len(answers) > 5:
            raise UsageError(f"5 Whys takes at most five answers, got {len(answers)}")
        with self.engine.begin() as conn:
            done = conn.execute(incidents.update().where(incidents.c.id == incident_id)
                                .values(whys=json.dumps([str(a) for a in answers])))
        if done.rowcount == 0:
            raise UsageError(f"incident {incident_id} does not exist")


def _incident(row: Any) -> Incident:
    return Incident(id=row.id, title=row.title, started_at=utc(row.started_at),
                    source=row.source, service=row.service, trace=row.trace,
                    evidence=json.loads(row.evidence or "{}"), whys=json.loads(row.whys or "[]"))


def whys_from_form(fields: Any, max_length: int = 4000) -> list[str]:
    """The 5 Whys answers from the HTML page's form fields ``why1``..``why5`` (any mapping,
    values may be lists as in parsed query strings); too long an answer is refused."""
    answers = []
    for n in range(1, 6):
        value = fields.get(f"why{n}", "")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = str(value).strip()
        if len(value) > max_length:
            raise UsageError(f"why{n} is {len(value)} characters; keep it under {max_length}")
        answers.append(value)
    while answers and not answers[-1]:
        answers.pop()
    return answers
