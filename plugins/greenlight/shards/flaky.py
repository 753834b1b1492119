"""Flaky tests: the decision (failed, then passed when rerun alone) and the ledger of them.

A flaky test should not fail a deploy, but it must not be forgotten either: every occurrence is
written to a ledger (test id, build, commit, when) so ``greenlight flaky list`` can show which
tests flake most often and the team fixes root causes instead of pressing "rebuild".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, select
from sqlalchemy.exc import SQLAlchemyError

from greenlight.errors import GreenlightError
from greenlight.shards.durations import _hash, _safe, database_url, open_engine
from greenlight.shards.junit import PASSED, SKIPPED

FLAKY, REAL_FAILURE = "flaky", "failed"

metadata = MetaData()
flaky_events = Table(
    "greenlight_flaky_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("id_hash", String(64), nullable=False, index=True),
    Column("test_id", Text, nullable=False),
    Column("build", String(200)),
    Column("commit_sha", String(64)),
    Column("seen_at", Float, nullable=False),
    Column("message", Text),
)


def verdict_after_rerun(rerun_outcome: str) -> str:
    """A failed test that passes (or skips) when rerun alone is flaky; failing again is real."""
    return FLAKY if rerun_outcome in (PASSED, SKIPPED) else REAL_FAILURE


@dataclass(frozen=True)
class FlakyEntry:
    """One line of ``greenlight flaky list``."""

    test_id: str
    count: int
    first_seen: float
    last_seen: float
    last_build: str | None
    last_commit: str | None

    def to_json(self) -> dict:
        return {"test_id": self.test_id, "count": self.count,
                "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen),
                "last_build": self.last_build, "last_commit": self.last_commit}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class FlakyLedger:
    """Append-only record of flaky occurrences, in the same database as the durations."""

    def __init__(self, url: str | None = None):
        self.url = database_url(url)
        self.engine = open_engine(self.url)
        try:
            metadata.create_all(self.engine, tables=[flaky_events])
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise GreenlightError(f"flaky ledger {_safe(self.url)}: cannot create table "
                                  f"({reason}); check --db") from exc

    def record(self, test_ids: Iterable[str], build: str | None = None,
               commit: str | None = None, messages: dict[str, str] | None = None,
               seen_at: float | None = None) -> int:
        """Add one occurrence per test id for this build; returns how many were added."""
        now = time.time() if seen_at is None else seen_at
        rows = [{"id_hash": _hash(t), "test_id": t, "build": build, "commit_sha": commit,
                 "seen_at": now, "message": (messages or {}).get(t, "")[:4000]}
                for t in dict.fromkeys(test_ids)]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(flaky_events.insert(), rows)
        return len(rows)

    def flakiest(self, limit: int = 50, since: float | None = None) -> list[FlakyEntry]:
        """Tests ordered by how often they flaked (then most recent first, then id)."""
        e = flaky_events.c
        query = select(e.id_hash, func.count().label("n"), func.min(e.seen_at).label("first"),
                       func.max(e.seen_at).label("last")).group_by(e.id_hash)
        if since is not None:
            query = query.where(e.seen_at >= since)
        with self.engine.connect() as conn:
            groups = conn.execute(query).all()
            entries = []
            for g in groups:
                latest = conn.execute(select(e.test_id, e.build, e.commit_sha).where(
                    e.id_hash == g.id_hash).order_by(e.seen_at.desc(), e.id.desc()).limit(1)
                ).one()
                entries.append(FlakyEntry(latest.test_id, int(g.n), float(g.first),
                                          float(g.last), latest.build, latest.commit_sha))
        entries.sort(key=lambda x: (-x.count, -x.last_seen, x.test_id))
        return entries[:limit]
