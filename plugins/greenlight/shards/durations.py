"""The durations store: one row per test id, exponentially smoothed over recent builds.

Kept in any SQLAlchemy database: SQLite by default (``var/durations.sqlite``), the master's
PostgreSQL when it has one. Smoothing keeps one slow run (a cold cache, a loaded worker) from
reshaping every later plan, while still following a test that really got slower. Import and
export use pytest-split's ``.test_durations`` JSON so teams can move between the two tools.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Iterable, Mapping

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from greenlight.db import create_tables, masked
from greenlight.db import open_engine as _open_engine
from greenlight.errors import UsageError
from greenlight.shards.durations_file import read_durations_file, write_durations_file
from greenlight.shards.junit import SKIPPED, TestResult

__all__ = ["DurationStore", "database_url", "read_durations_file", "smooth",
           "write_durations_file"]

DEFAULT_URL = "sqlite:///var/durations.sqlite"
ENV_URL = "GREENLIGHT_DURATIONS_DB"
DEFAULT_ALPHA = 0.3  # weight of the newest observation

metadata = MetaData()
durations_table = Table(
    "greenlight_test_durations", metadata,
    # Test ids can be long (parametrized); MySQL can't index long text, so the key is a hash.
    Column("id_hash", String(64), primary_key=True),
    Column("test_id", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("last_build", String(200)),
    Column("updated_at", Float, nullable=False),
)


def smooth(previous: float | None, observed: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Exponential smoothing; the first observation is taken as is."""
    if previous is None:
        return observed
    return alpha * observed + (1.0 - alpha) * previous


def database_url(explicit: str | None = None) -> str:
    """``--db`` wins, then $GREENLIGHT_DURATIONS_DB, then SQLite under var/."""
    return explicit or os.environ.get(ENV_URL) or DEFAULT_URL


def open_engine(url: str) -> Engine:
    """The durations database's engine (greenlight.db: SQLite folder made, WAL, timeouts)."""
    return _open_engine(url, what="durations database",
                        example="sqlite:///var/durations.sqlite (pass --db)")


_safe = masked  # a URL without its password, for messages


def _hash(test_id: str) -> str:
    return hashlib.sha256(test_id.encode("utf-8", "surrogateescape")).hexdigest()


class DurationStore:
    """Reads and updates smoothed durations in one database."""

    def __init__(self, url: str | None = None, alpha: float = DEFAULT_ALPHA,
                 engine: Engine | None = None):
        if not 0.0 < alpha <= 1.0:
            raise UsageError(f"smoothing alpha must be in (0, 1], got {alpha}")
        self.url = database_url(url)
        self.alpha = alpha
        self.engine = engine or open_engine(self.url)
        create_tables(metadata, self.engine, what="durations store", tables=[durations_table],
                      hint=f"check --db / ${ENV_URL}")

    def durations(self) -> dict[str, float]:
        """All known durations, test id -> seconds, sorted by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(durations_table.c.test_id, durations_table.c.seconds))
            return dict(sorted((r.test_id, float(r.seconds)) for r in rows))

    def record(self, observed: Mapping[str, float], build: str | None = None) -> int:
        """Fold one build's observed durations into the store; returns how many were recorded."""
        observed = {t: float(s) for t, s in observed.items() if s is not None and s >= 0}
        if not observed:
            return 0
        for attempt in range(3):
            try:
                return self._record_once(observed, build)
            except IntegrityError:
                # Another build inserted the same new test id at the same time: read again.
                if attempt == 2:
                    raise
        return 0

    def _record_once(self, observed: Mapping[str, float], build: str | None) -> int:
        now = time.time()
        by_hash = {_hash(t): t for t in observed}
        with self.engine.begin() as conn:
            existing = {}
            keys = list(by_hash)
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                for row in conn.execute(select(durations_table).where(
                        durations_table.c.id_hash.in_(chunk))):
                    existing[row.id_hash] = row
            inserts, updates = [], []
            for h, test_id in by_hash.items():
                row = existing.get(h)
                seconds = observed[test_id]
                if row is None:
                    inserts.append({"id_hash": h, "test_id": test_id, "seconds": seconds,
                                    "samples": 1, "last_build": build, "updated_at": now})
                else:
                    updates.append({"h": h, "seconds": smooth(row.seconds, seconds, self.alpha),
                                    "samples": row.samples + 1, "last_build": build,
                                    "updated_at": now})
            if inserts:
                conn.execute(durations_table.insert(), inserts)
            if updates:
                stmt = durations_table.update().where(
                    durations_table.c.id_hash == bindparam("h")).values(
                    seconds=bindparam("seconds"), samples=bindparam("samples"),
                    last_build=bindparam("last_build"), updated_at=bindparam("updated_at"))
                conn.execute(stmt, updates)
        return len(observed)

    def record_results(self, results: Iterable[TestResult], build: str | None = None) -> int:
        """Record durations from JUnit results; skipped tests say nothing about their cost."""
        return self.record({r.test_id: r.seconds for r in results if r.outcome != SKIPPED},
                           build)

    def replace(self, durations: Mapping[str, float]) -> int:
        """Set durations exactly (an import): existing ids are overwritten, not smoothed."""
        now = time.time()
        rows = [{"id_hash": _hash(t), "test_id": t, "seconds": float(s), "samples": 1,
                 "last_build": None, "updated_at": now} for t, s in durations.items()]
        with self.engine.begin() as conn:
            hashes = [r["id_hash"] for r in rows]
            for i in range(0, len(hashes), 500):
                conn.execute(durations_table.delete().where(
                    durations_table.c.id_hash.in_(hashes[i:i + 500])))
            if rows:
                conn.execute(durations_table.insert(), rows)
        return len(rows)
