"""The one module that talks to the experiments database (SQLAlchemy Core).

Experiment states, the audit trail of who changed what, exposures and metric events live in one
database: SQLite by default, PostgreSQL (or MySQL/MariaDB) by URL. Results are computed by SQL
aggregates here, so a million exposures never cross the wire — only one row per branch and
metric does. Times are epoch seconds (float): cheap to compare, the same in every dialect.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import blake2b

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from greenlight.db import create_tables, database_error, masked, open_engine
from greenlight.errors import GreenlightError, UsageError
from greenlight.experiments.cells import DAY, HOUR, add_state, append, contributions, state
from greenlight.experiments.buckets import ALL_USERS, Bucket, property_pattern
from greenlight.experiments.definition import CLOSED, QA, ROLLOUT, Experiment, check_name

DEFAULT_URL = "sqlite:///var/experiments.sqlite"
ENV_URL = "GREENLIGHT_EXPERIMENTS_DB"

metadata = MetaData()

experiments_table = Table(
    "gl_experiments", metadata,
    Column("name", String(100), primary_key=True),
    Column("branches", Text, nullable=False),  # JSON {branch: weight}, control implicit
    Column("status", String(16), nullable=False),
    Column("rollout_pct", Float, nullable=False, default=0.0),
    Column("closed_branch", String(100)),
    Column("qa_users", Text, nullable=False, default="[]"),
    Column("qa_groups", Text, nullable=False, default="[]"),
    Column("planned_users", Integer),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(255)),
    Column("version", Integer, nullable=False, default=1),
)

changes_table = Table(
    "gl_experiment_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment", String(100), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("by", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
)

exposures_table = Table(
    "gl_experiment_exposures", metadata,
    Column("experiment", String(100), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("user_key", BigInteger, nullable=False),  # user_key(user_id): joins on integers
    Column("branch", String(100), nullable=False),
    Column("at", Float, nullable=False),
    # The first exposure wins: later duplicates are ignored, so a user is in one branch only.
    UniqueConstraint("experiment", "user_id", name="uq_gl_exposure_user"),
)
Index("ix_gl_exposures_user_key", exposures_table.c.user_key)
# A report over a date range reads the exposures of one experiment in a time range, with what it
# needs from them: the range scan covers the query.
Index("ix_gl_exposures_range", exposures_table.c.experiment, exposures_table.c.at,
      exposures_table.c.user_key, exposures_table.c.branch)

# The user attributes an experiment declares, recorded with the user's first exposure.
user_attributes_table = Table(
    "gl_experiment_user_attributes", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("user_key", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(100), primary_key=True),
    Column("value", String(100), nullable=False),
    Column("branch", String(100), nullable=False),
)
# A report over every exposure counts attribute values per branch straight from this index.
Index("ix_gl_user_attributes_values", user_attributes_table.c.experiment,
      user_attributes_table.c.name, user_attributes_table.c.value,
      user_attributes_table.c.branch)

# Per experiment: the declared attribute names (JSON list). A table of its own so stores made
# before attributes existed need no change to gl_experiments.
declarations_table = Table(
    "gl_experiment_declarations", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("attributes", Text, nullable=False, default="[]"),
)

# Buckets saved with an experiment (JSON of greenlight.experiments.buckets.Bucket).
buckets_table = Table(
    "gl_experiment_buckets", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("updated_by", String(255), nullable=False),
    Column("updated_at", Float, nullable=False),
)

events_table = Table(
    "gl_experiment_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("user_key", BigInteger, nullable=False),
    Column("name", String(100), nullable=False),
    Column("value", Float, nullable=False, default=1.0),
    Column("at", Float, nullable=False),
    # Canonical JSON of the event's category properties (platform=client), or NULL.
    Column("props", String(400)),
)
# Covering index in the order results group by: the per-user sums can stream from it.
Index("ix_gl_events_user_key", events_table.c.user_key, events_table.c.name, events_table.c.at,
      events_table.c.value)
# A report up to a past date subtracts the events after it from the running totals.
Index("ix_gl_events_at", events_table.c.at)

# Per (experiment, user, metric) running totals of the events that happened after the user's
# exposure, maintained as exposures and events are written: results then read one row per
# converting user instead of joining millions of events (the full join is kept for --since).
totals_table = Table(
    "gl_experiment_user_totals", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("user_key", BigInteger, primary_key=True, autoincrement=False),
    Column("metric", String(100), primary_key=True),
    Column("branch", String(100), nullable=False),
    Column("n", Integer, nullable=False),
    Column("total", Float, nullable=False),
)
Index("ix_gl_user_totals_key", totals_table.c.user_key)

# Per (experiment, branch, metric) sums over users — users with ≥1 event, events, Σ user total,
# Σ user total² — kept up to date with the per-user totals, so results read a handful of rows.
# The row with metric '' counts the exposed users of the branch.
branch_totals_table = Table(
    "gl_experiment_branch_totals", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("branch", String(100), primary_key=True),
    Column("metric", String(100), primary_key=True),
    Column("users", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("squares", Float, nullable=False),
)
EXPOSED = ""  # the metric name of the exposure-count row

# Per (experiment, bucket, exposure day, hour, branch, metric): what the bucket's users
# exposed that day add in that hour — users (metric ''; for a metric: users with their first
# event), events, Σ user total, Σ user total² (the change of each user's square: see
# greenlight.experiments.cells). Bucket 'all' is every exposed user. A report over a date range
# sums the cells of its days and hours and reads raw rows only for a partial last hour and a
# partial first day. Each change is kept twice: in its hour (span 1, ``hour`` = the hour) and
# in its day (span 24, ``hour`` = the day's first hour), so a report reads the days before
# its end's day and the hours of that day — a few thousand rows whatever the traffic.
cells_table = Table(
    "gl_experiment_cells", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("bucket", String(100), primary_key=True),
    Column("span", Integer, primary_key=True, autoincrement=False),  # hours: 1 or 24
    Column("x_day", Integer, primary_key=True, autoincrement=False),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("branch", String(100), primary_key=True),
    Column("metric", String(100), primary_key=True),
    Column("users", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("squares", Float, nullable=False),
)
# The same per attribute value: users who joined the bucket in that hour.
attribute_cells_table = Table(
    "gl_experiment_attribute_cells", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("bucket", String(100), primary_key=True),
    Column("span", Integer, primary_key=True, autoincrement=False),  # hours: 1 or 24
    Column("x_day", Integer, primary_key=True, autoincrement=False),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("branch", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("value", String(100), primary_key=True),
    Column("users", BigInteger, nullable=False),
)
# Which buckets have cells, built from which definition: writes fold into these only, and a
# report on a bucket without a row (a store from before the cells, a changed definition)
# builds them first from the raw rows.
cell_state_table = Table(
    "gl_experiment_cell_state", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("bucket", String(100), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("built_at", Float, nullable=False),
)

# A report's bucket members, per connection (a temporary table: dropped after each bucket).
_members_table = Table(
    "gl_report_members", MetaData(),
    Column("user_key", BigInteger, primary_key=True, autoincrement=False),
    Column("branch", String(100), nullable=False),
    Column("at", Float, nullable=False),
    prefixes=["TEMPORARY"],
)

# One row whose update serialises the transactions that fold events into totals, in every
# dialect (a row lock in PostgreSQL/MySQL, the write lock in SQLite): an exposure and an event
# written at the same moment by two hosts are then folded exactly once.
fold_lock_table = Table(
    "gl_experiment_fold_lock", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("counter", BigInteger, nullable=False, default=0),
)


# Batches already applied, by the id the writing client gave them: a batch replayed from a
# spool after a crash, or re-sent after a write whose commit was never acknowledged, is skipped
# instead of counted twice. Rows older than ``BATCH_MEMORY_SECONDS`` are pruned.
batches_table = Table(
    "gl_experiment_batches", metadata,
    Column("id", String(64), primary_key=True),
    Column("at", Float, nullable=False, index=True),
)
BATCH_MEMORY_SECONDS = 14 * 86400

# What the app hosts could not record, from their own counters: one row per writing process,
# kind ('exposure'/'event') and experiment ('' for events, which belong to users, not to an
# experiment), holding the cumulative count and the time span of the lost rows. Reports are
# absolute, so sending one twice changes nothing.
losses_table = Table(
    "gl_experiment_losses", metadata,
    Column("source", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("experiment", String(100), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("reported_at", Float, nullable=False),
)


# The last results read of each experiment (per ``since``): the always-valid p-values shown are
# the running minimum over reads, so each read starts from the previous one.
reads_table = Table(
    "gl_experiment_reads", metadata,
    Column("experiment", String(100), primary_key=True),
    Column("since", String(32), primary_key=True),  # "" = since the start
    Column("results", Text, nullable=False),
    Column("at", Float, nullable=False),
)


@dataclass(frozen=True)
class Loss:
    """Rows the hosts counted as lost for one kind: how many, and between which times."""

    kind: str
    count: int
    first_at: float
    last_at: float


def user_key(user_id: str) -> int:
    """A signed 64-bit key of a user id: results join and group a million users on integers
    (several times faster than on text, and collation-free). 64 bits make collisions between
    a few million users vanishingly unlikely (~1e-7)."""
    return int.from_bytes(blake2b(user_id.encode("utf-8"), digest_size=8).digest(), "big",
                          signed=True)


def default_url() -> str:
    return os.environ.get(ENV_URL) or DEFAULT_URL


@dataclass(frozen=True)
class Change:
    """One line of the audit trail: who did what to which experiment, and when."""

    experiment: str
    at: float
    by: str
    action: str
    detail: dict


@dataclass(frozen=True)
class BucketRows:
    """What the SQL returns for one bucket of a report (see :meth:`ExperimentStore.bucket_report`):
    users per branch, ``attributes[name][branch][value]`` users, and per-metric aggregates."""

    counts: dict[str, int]
    attributes: dict[str, dict[str, dict[str, int]]]
    aggregates: list["BranchMetricAggregate"]


@dataclass(frozen=True)
class BranchMetricAggregate:
    """SQL output for one (branch, metric): users with ≥1 event, event count, and the sum and
    sum of squares over users of each user's total value (enough for mean and variance)."""

    branch: str
    metric: str
    converting: int
    events: int
    total: float
    total_squares: float


class ExperimentStore:
    """Experiment states, audit trail, exposures and events in one SQL database."""

    def __init__(self, url: str | None = None, *, connect_timeout: float = 3.0,
                 statement_timeout_ms: int | None = None, create: bool = True):
        self.url = url or default_url()
        self.engine = open_engine(self.url, what="experiments store",
                                  connect_timeout=connect_timeout,
                                  statement_timeout_ms=statement_timeout_ms,
                                  example="sqlite:///var/experiments.sqlite or "
                                          "postgresql://user@host/db")
        if create:
            self.create_schema()

    def create_schema(self) -> None:
        create_tables(metadata, self.engine, what="experiments store")
        try:
            self._add_missing_columns()
            with self.engine.begin() as conn:
                if conn.execute(select(fold_lock_table.c.id)).first() is None:
                    conn.execute(_insert_ignoring_duplicates(self.engine, fold_lock_table),
                                 {"id": 1, "counter": 0})
        except SQLAlchemyError as exc:
            raise database_error("experiments store", self.engine.url, exc) from exc

    def _add_missing_columns(self) -> None:
        """Stores made before event properties get the column (two clients starting at once
        may both try: the loser finds it there)."""
        def missing() -> bool:
            with self.engine.connect() as conn:
                columns = {c["name"] for c in inspect(conn).get_columns(events_table.name)}
            return "props" not in columns

        if not missing():
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {events_table.name} "
                                  "ADD COLUMN props VARCHAR(400)"))
        except SQLAlchemyError:
            if missing():
                raise

    def _where(self) -> str:
        return masked(self.engine.url)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- states -----------------------------------------------------------------------------
    def load_all(self) -> dict[str, Experiment]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(experiments_table)).mappings().all()
            declared = dict(conn.execute(select(declarations_table.c.experiment,
                                                declarations_table.c.attributes)).all())
        return {row["name"]: _row_to_experiment(row, declared.get(row["name"]))
                for row in rows}

    def get(self, name: str) -> Experiment:
        check_name(name)
        with self.engine.connect() as conn:
            row = conn.execute(select(experiments_table)
                               .where(experiments_table.c.name == name)).mappings().first()
            declared = conn.execute(select(declarations_table.c.attributes).where(
                declarations_table.c.experiment == name)).scalar()
        if row is None:
            raise UsageError(f"no experiment named {name!r} in {self._where()}; "
                             "`greenlight experiment list` shows the defined ones")
        return _row_to_experiment(row, declared)

    def define(self, experiment: Experiment, by: str, *, replace: bool = False) -> Experiment:
        """Create an experiment. An existing one keeps its state (admins own it once it runs);
        only ``replace=True`` overwrites it — refused when it would move users between
        branches of a running experiment."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(experiments_table)
                               .where(experiments_table.c.name == experiment.name)
                               ).mappings().first()
            if row is not None:
                current = _row_to_experiment(row)
                if not replace:
                    return current.with_state(
                        attributes=self._declare(conn, experiment, only_new=True))
                if current.branches != experiment.branches and _has_exposures(conn, current.name):
                    raise UsageError(f"experiment {experiment.name} already has exposures; "
                                     "changing its branches or weights would move users "
                                     "between branches. Define a new experiment instead.")
                conn.execute(update(experiments_table)
                             .where(experiments_table.c.name == experiment.name)
                             .values(**_experiment_values(experiment), updated_at=now,
                                     updated_by=by, version=current.version + 1))
                action = "redefine"
            else:
                conn.execute(insert(experiments_table).values(
                    name=experiment.name, **_experiment_values(experiment), created_at=now,
                    updated_at=now, updated_by=by, version=1))
                action = "define"
            _record_change(conn, experiment.name, now, by, action, {
                "branches": experiment.branches, "status": experiment.status,
                "rollout_pct": experiment.rollout_pct,
                "attributes": list(experiment.attributes)})
            self._declare(conn, experiment, only_new=False)
        return self.get(experiment.name)

    @staticmethod
    def _declare(conn, experiment: Experiment, only_new: bool) -> tuple[str, ...]:
        """Save the declared attributes; an app re-defining a running experiment (which keeps
        its state) may still add attributes, never drop them. Returns the declared names."""
        d = declarations_table
        current = conn.execute(select(d.c.attributes).where(
            d.c.experiment == experiment.name)).scalar()
        names = list(experiment.attributes)
        if current is not None:
            known = json.loads(current)
            if only_new:
                names = known + [n for n in names if n not in known]
            if names != known:
                conn.execute(update(d).where(d.c.experiment == experiment.name)
                             .values(attributes=json.dumps(names)))
        elif names:
            conn.execute(insert(d).values(experiment=experiment.name,
                                          attributes=json.dumps(names)))
        return tuple(names)

    # --- buckets ------------------------------------------------------------------------------
    def save_bucket(self, name: str, bucket: Bucket, by: str) -> Bucket:
        """Create or replace a bucket of experiment ``name`` (recorded in its history)."""
        self.get(name)
        if not by:
            raise UsageError("saving a bucket needs the name of who does it (--user or $USER)")
        b = buckets_table
        now = time.time()
        with self.engine.begin() as conn:
            where = (b.c.experiment == name, b.c.name == bucket.name)
            if conn.execute(select(b.c.definition).where(*where)).scalar() == bucket.to_json():
                return bucket  # unchanged: nothing to record (apps re-save theirs at start)
            values = {"definition": bucket.to_json(), "updated_by": by, "updated_at": now}
            if conn.execute(update(b).where(*where).values(**values)).rowcount == 0:
                conn.execute(insert(b).values(experiment=name, name=bucket.name, **values))
            _record_change(conn, name, now, by, "bucket", {"bucket": bucket.name,
                                                          "definition": bucket.describe()})
        # Its report cells, built now from the raw rows (a saved bucket is there to be read).
        self.build_cells(name, [bucket])
        return bucket

    def delete_bucket(self, name: str, bucket: str, by: str) -> None:
        b = buckets_table
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(b.delete().where(b.c.experiment == name, b.c.name == bucket)
                            ).rowcount == 0:
                raise UsageError(f"experiment {name} has no bucket {bucket!r}")
            self._drop_cells(conn, name, [bucket])
            _record_change(conn, name, now, by, "delete bucket", {"bucket": bucket})

    def buckets(self, name: str) -> list[Bucket]:
        b = buckets_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(b.c.name, b.c.definition).where(b.c.experiment == name)
                                .order_by(b.c.name)).all()
        return [Bucket.from_json(n, d) for n, d in rows]

    def set_rollout(self, name: str, pct: float, by: str) -> Experiment:
        current = self.get(name)
        if current.status == CLOSED:
            raise UsageError(f"experiment {name} is closed on {current.closed_branch}; "
                             "closing is final (define a new experiment to test again)")
        return self._change(current.with_state(status=ROLLOUT, rollout_pct=float(pct)), by,
                            "rollout", {"from": current.status_label(), "rollout_pct": pct})

    def set_qa(self, name: str, users: Sequence[str] | None, groups: Sequence[str] | None,
               by: str) -> Experiment:
        current = self.get(name)
        if current.status == CLOSED:
            raise UsageError(f"experiment {name} is closed on {current.closed_branch}; "
                             "closing is final")
        changes: dict = {"status": QA}
        if users is not None:
            changes["qa_users"] = tuple(dict.fromkeys(u for u in users if u))
        if groups is not None:
            changes["qa_groups"] = tuple(dict.fromkeys(g for g in groups if g))
        updated = current.with_state(**changes)
        return self._change(updated, by, "qa", {"users": list(updated.qa_users),
                                                "groups": list(updated.qa_groups)})

    def close(self, name: str, branch: str, by: str) -> Experiment:
        current = self.get(name)
        if branch not in current.all_branches():
            raise UsageError(f"experiment {name} has no branch {branch!r}; branches are "
                             f"{', '.join(current.all_branches())}")
        return self._change(current.with_state(status=CLOSED, closed_branch=branch), by,
                            "close", {"branch": branch})

    def _change(self, updated: Experiment, by: str, action: str, detail: dict) -> Experiment:
        if not by:
            raise UsageError("a change needs the name of who makes it (--user or $USER)")
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(update(experiments_table)
                         .where(experiments_table.c.name == updated.name)
                         .values(**_experiment_values(updated), updated_at=now, updated_by=by,
                                 version=experiments_table.c.version + 1))
            _record_change(conn, updated.name, now, by, action, detail)
        return self.get(updated.name)

    def history(self, name: str) -> list[Change]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(changes_table)
                                .where(changes_table.c.experiment == name)
                                .order_by(changes_table.c.id)).mappings().all()
        return [Change(r["experiment"], r["at"], r["by"], r["action"], json.loads(r["detail"]))
                for r in rows]

    # --- recording ----------------------------------------------------------------------------
    def write_exposures(self, rows: Iterable[tuple[str, str, str, float]],
                        batch_id: str | None = None) -> int:
        """Insert (experiment, user_id, branch, at) rows; a user's first exposure wins. Events
        the new users already have (written earlier, e.g. by another host) are folded into the
        running totals. Returns how many exposures were new. A batch whose ``batch_id`` was
        applied before is skipped (returns 0)."""
        batch: dict[tuple[str, str], dict] = {}
        attributes: dict[tuple[str, str], dict] = {}
        for row in rows:
            e, u, b, t = row[:4]
            if (e, u) not in batch:
                batch[(e, u)] = {"experiment": e, "user_id": u, "user_key": user_key(u),
                                 "branch": b, "at": t}
                if len(row) > 4 and row[4]:
                    attributes[(e, u)] = row[4]
        if not batch:
            return 0
        x, ev = exposures_table, events_table
        with self.engine.begin() as conn:
            _take_fold_lock(conn)
            if not _claim_batch(conn, batch_id):
                return 0
            existing: set[tuple[str, str]] = set()
            for experiment in {e for e, _ in batch}:
                users = [u for e, u in batch if e == experiment]
                for chunk in _chunks(users):
                    existing.update(conn.execute(
                        select(x.c.experiment, x.c.user_id)
                        .where(x.c.experiment == experiment, x.c.user_id.in_(chunk))).all())
            new = [row for key, row in batch.items() if key not in existing]
            if not new:
                return 0
            conn.execute(_insert_ignoring_duplicates(self.engine, x), new)
            attribute_rows = [{"experiment": r["experiment"], "user_key": r["user_key"],
                               "name": str(k)[:100], "value": str(v)[:100],
                               "branch": r["branch"]}
                              for r in new
                              for k, v in attributes.get((r["experiment"], r["user_id"]),
                                                         {}).items()]
            if attribute_rows:
                conn.execute(_insert_ignoring_duplicates(self.engine, user_attributes_table),
                             attribute_rows)
            exposed: dict[tuple[str, str], int] = {}
            for row in new:
                exposed[(row["experiment"], row["branch"])] = exposed.get(
                    (row["experiment"], row["branch"]), 0) + 1
            self._upsert_adding(conn, branch_totals_table, [
                {"experiment": e, "branch": b, "metric": EXPOSED, "users": count, "n": 0,
                 "total": 0.0, "squares": 0.0} for (e, b), count in exposed.items()])
            by_key: dict[int, list[dict]] = {}
            for row in new:
                by_key.setdefault(row["user_key"], []).append(row)
            sums: dict[tuple[str, int, str], list] = {}
            history: dict[int, list] = {}
            for chunk in _chunks(list(by_key)):
                found = conn.execute(select(ev.c.user_key, ev.c.name, ev.c.value, ev.c.at,
                                            ev.c.props)
                                     .where(ev.c.user_key.in_(chunk))).all()
                for key, metric, value, at, props in found:
                    history.setdefault(key, []).append((at, metric, value, props))
                    for row in by_key[key]:
                        if at >= row["at"]:
                            _add(sums, row["experiment"], key, metric, row["branch"], value)
            self._upsert_totals(conn, sums)
            materialized = _materialized(conn, {r["experiment"] for r in new})
            if materialized:
                users = []
                for r in new:
                    if r["experiment"] in materialized:
                        attrs = {str(k)[:100]: str(v)[:100] for k, v in attributes.get(
                            (r["experiment"], r["user_id"]), {}).items()}
                        events = sorted(history.get(r["user_key"], ()), key=_at)
                        users.append((r["experiment"], r["branch"], r["at"], attrs, None,
                                      events))
                self._fold_cells(conn, materialized, users)
        return len(new)

    def write_events(self, rows: Iterable[tuple],
                     batch_id: str | None = None) -> int:
        """Insert (user_id, name, value, at) metric events and fold them into the running
        totals of every experiment the user was exposed to before the event. Rows are
        (user_id, name, value, at[, properties JSON]). A batch whose
        ``batch_id`` was applied before is skipped (returns 0)."""
        values = [{"user_id": r[0], "user_key": user_key(r[0]), "name": r[1], "value": r[2],
                   "at": r[3], "props": r[4] if len(r) > 4 else None} for r in rows]
        if not values:
            return 0
        x = exposures_table
        with self.engine.begin() as conn:
            _take_fold_lock(conn)
            if not _claim_batch(conn, batch_id):
                return 0
            exposures: dict[int, list] = {}
            for chunk in _chunks(list({v["user_key"] for v in values})):
                for experiment, key, branch, at in conn.execute(
                        select(x.c.experiment, x.c.user_key, x.c.branch, x.c.at)
                        .where(x.c.user_key.in_(chunk))):
                    exposures.setdefault(key, []).append((experiment, branch, at))
            materialized = _materialized(conn, {e for found in exposures.values()
                                                for e, _, _ in found})
            if materialized:  # the users' histories before this batch, for their cells
                cell_users = self._cell_histories(
                    conn, materialized, {k: [e for e in found if e[0] in materialized]
                                         for k, found in exposures.items()})
            conn.execute(insert(events_table), values)
            sums: dict[tuple[str, int, str], list] = {}
            for v in values:
                for experiment, branch, at in exposures.get(v["user_key"], ()):
                    if v["at"] >= at:
                        _add(sums, experiment, v["user_key"], v["name"], branch, v["value"])
            self._upsert_totals(conn, sums)
            if materialized:
                added: dict[int, list] = {}
                for v in values:
                    added.setdefault(v["user_key"], []).append(
                        (v["at"], v["name"], v["value"], v["props"]))
                metric_cells: dict = {}
                attribute_cells: dict = {}
                recompute = []
                for key, (experiment, branch, at, attrs, old) in cell_users:
                    mine = sorted((e for e in added[key] if e[0] >= at), key=_at)
                    if old and mine and mine[0][0] < old[-1][0]:  # out of time order
                        recompute.append((experiment, branch, at, attrs, old,
                                          sorted(old + mine, key=_at)))
                        continue
                    for bucket_key, bucket in materialized[experiment]:
                        append(bucket, at, attrs, old, mine, metric_cells, attribute_cells,
                               (experiment, bucket_key, int(at // DAY), branch))
                self._fold_cells(conn, materialized, recompute, metric_cells, attribute_cells)
        return len(values)

    def _cell_histories(self, conn, materialized: dict, exposures: dict[int, list]) -> list:
        """(user_key, (experiment, branch, exposed_at, attributes, events since exposure))
        for every exposure of the users in ``exposures`` to an experiment with cells."""
        ev, ua = events_table, user_attributes_table
        keys = [k for k, found in exposures.items() if found]
        events: dict[int, list] = {}
        attrs: dict[tuple[str, int], dict] = {}
        for chunk in _chunks(keys):
            for key, at, name, value, props in conn.execute(
                    select(ev.c.user_key, ev.c.at, ev.c.name, ev.c.value, ev.c.props)
                    .where(ev.c.user_key.in_(chunk))):
                events.setdefault(key, []).append((at, name, value, props))
            for experiment, key, name, value in conn.execute(
                    select(ua.c.experiment, ua.c.user_key, ua.c.name, ua.c.value)
                    .where(ua.c.user_key.in_(chunk),
                           ua.c.experiment.in_(list(materialized)))):
                attrs.setdefault((experiment, key), {})[name] = value
        out = []
        for key in keys:
            mine = sorted(events.get(key, ()), key=_at)
            for experiment, branch, at in exposures[key]:
                out.append((key, (experiment, branch, at, attrs.get((experiment, key), {}),
                                  [e for e in mine if e[0] >= at])))
        return out

    def _fold_cells(self, conn, materialized: dict, users: list,
                    metric_cells: dict | None = None, attribute_cells: dict | None = None
                    ) -> None:
        """Move the cells of each (experiment, branch, exposed_at, attributes, old events or
        None for a new exposure, new events) user from the old history to the new one, in
        every materialized bucket, adding to ``metric_cells``/``attribute_cells`` and writing
        them. The whole history is recomputed, so events written out of order land right."""
        metric_cells = {} if metric_cells is None else metric_cells
        attribute_cells = {} if attribute_cells is None else attribute_cells
        for experiment, branch, at, attrs, old, new in users:
            x_day = int(at // DAY)
            for key, bucket in materialized[experiment]:
                cell_key = (experiment, key, x_day, branch)
                after_m: dict = {}
                after_a: dict = {}
                contributions(bucket, at, attrs, new, after_m, after_a, cell_key)
                if old is not None:  # None: not exposed before
                    # The user's own difference first, so unchanged hours cancel exactly.
                    before_m: dict = {}
                    before_a: dict = {}
                    contributions(bucket, at, attrs, old, before_m, before_a, cell_key)
                    for k, cell in before_m.items():
                        now = after_m.get(k)
                        if now == cell:
                            del after_m[k]
                        elif now is None:
                            after_m[k] = [-v for v in cell]
                        else:
                            after_m[k] = [a - b for a, b in zip(now, cell)]
                    for k, users_before in before_a.items():
                        after_a[k] = after_a.get(k, 0) - users_before
                for k, cell in after_m.items():
                    total = metric_cells.get(k)
                    if total is None:
                        metric_cells[k] = cell
                    else:
                        for i in range(4):
                            total[i] += cell[i]
                for k, users_now in after_a.items():
                    if users_now:
                        attribute_cells[k] = attribute_cells.get(k, 0) + users_now
        self._write_cells(conn, metric_cells, attribute_cells)

    def _write_cells(self, conn, metric_cells: dict, attribute_cells: dict) -> None:
        """Add hourly changes keyed (experiment, bucket, x_day, branch, hour, ...) to their
        hour's and their day's cells."""
        for table, cells, names in (
                (cells_table, metric_cells,
                 ("experiment", "bucket", "x_day", "branch", "hour", "metric")),
                (attribute_cells_table, attribute_cells,
                 ("experiment", "bucket", "x_day", "branch", "hour", "name", "value"))):
            days: dict = {}
            for key, value in cells.items():
                day_key = key[:4] + (key[4] - key[4] % 24,) + key[5:]
                if isinstance(value, list):
                    total = days.get(day_key)
                    if total is None:
                        days[day_key] = list(value)
                    else:
                        for i in range(4):
                            total[i] += value[i]
                else:
                    days[day_key] = days.get(day_key, 0) + value
            rows = []
            for span, found in ((1, cells), (24, days)):
                for key, value in found.items():
                    if isinstance(value, list):
                        if any(value):
                            rows.append(dict(zip(names, key), span=span, users=value[0],
                                             n=value[1], total=value[2], squares=value[3]))
                    elif value:
                        rows.append(dict(zip(names, key), span=span, users=value))
            for chunk in _chunks(rows):
                self._upsert_adding(conn, table, chunk)

    def _upsert_totals(self, conn, sums: dict[tuple[str, int, str], list]) -> None:
        """Add per-user increments to the per-user totals and, through the change of each
        user's total (Σ T² moves by (T + Δ)² − T²), to the per-branch sums."""
        if not sums:
            return
        t = totals_table
        before: dict[tuple[str, int, str], float] = {}
        for chunk in _chunks(list({k for _, k, _ in sums})):
            for e, k, m, total in conn.execute(select(t.c.experiment, t.c.user_key, t.c.metric,
                                                      t.c.total).where(t.c.user_key.in_(chunk))):
                before[(e, k, m)] = total
        branch: dict[tuple[str, str, str], list] = {}
        for (e, k, m), (b, n, delta) in sums.items():
            old = before.get((e, k, m))
            entry = branch.setdefault((e, b, m), [0, 0, 0.0, 0.0])
            entry[0] += old is None
            entry[1] += n
            entry[2] += delta
            base = old or 0.0
            entry[3] += (base + delta) ** 2 - base * base
        self._upsert_adding(conn, t, [
            {"experiment": e, "user_key": k, "metric": m, "branch": b, "n": n, "total": d}
            for (e, k, m), (b, n, d) in sums.items()])
        self._upsert_adding(conn, branch_totals_table, [
            {"experiment": e, "branch": b, "metric": m, "users": u, "n": n, "total": d,
             "squares": q} for (e, b, m), (u, n, d, q) in branch.items()])

    def _upsert_adding(self, conn, table: Table, rows: list[dict]) -> None:
        """Insert rows, or add their numeric columns to the existing row with the same key."""
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        adding = [c for c in ("users", "n", "total", "squares") if c in table.c and c in rows[0]]
        dialect = self.engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as upsert
            else:
                from sqlalchemy.dialects.sqlite import insert as upsert
            stmt = upsert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c[k] for k in keys],
                set_={c: table.c[c] + stmt.excluded[c] for c in adding})
        elif dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as upsert
            stmt = upsert(table)
            stmt = stmt.on_duplicate_key_update(
                {c: table.c[c] + stmt.inserted[c] for c in adding})
        else:  # pragma: no cover - other dialects are not supported for writes
            raise GreenlightError(f"experiments store: no upsert for dialect {dialect}")
        conn.execute(stmt, rows)

    def rebuild_totals(self, name: str | None = None) -> None:
        """Recompute the running totals and the report cells (of 'all' and every saved bucket)
        from the raw exposures and events (after a bulk load that bypassed
        :meth:`write_events`, or to repair them)."""
        with self.engine.begin() as conn:
            _take_fold_lock(conn)
            delete = totals_table.delete()
            if name is not None:
                delete = delete.where(totals_table.c.experiment == name)
            conn.execute(delete)
            names = [name] if name is not None else [
                r[0] for r in conn.execute(select(exposures_table.c.experiment).distinct())]
            delete = branch_totals_table.delete()
            if name is not None:
                delete = delete.where(branch_totals_table.c.experiment == name)
            conn.execute(delete)
            t, x = totals_table, exposures_table
            for experiment in names:
                per_user = self._per_user_select(experiment, None, None, with_key=True)
                conn.execute(insert(totals_table).from_select(
                    ["experiment", "user_key", "metric", "branch", "n", "total"], per_user))
                columns = ["experiment", "branch", "metric", "users", "n", "total", "squares"]
                conn.execute(insert(branch_totals_table).from_select(columns, select(
                    t.c.experiment, t.c.branch, t.c.metric, func.count(), func.sum(t.c.n),
                    func.sum(t.c.total), func.sum(t.c.total * t.c.total))
                    .where(t.c.experiment == experiment)
                    .group_by(t.c.experiment, t.c.branch, t.c.metric)))
                conn.execute(insert(branch_totals_table).from_select(columns, select(
                    x.c.experiment, x.c.branch, literal(EXPOSED, String(100)), func.count(),
                    literal(0, BigInteger), literal(0.0, Float), literal(0.0, Float))
                    .where(x.c.experiment == experiment)
                    .group_by(x.c.experiment, x.c.branch)))
        for experiment in names:
            self.build_cells(experiment, [None, *self.buckets(experiment)])

    def build_cells(self, name: str, buckets: Sequence[Bucket | None]) -> None:
        """(Re)build the report cells of ``buckets`` (None: 'all') of experiment ``name`` from
        the raw exposures, attributes and events, in one pass; from then on writes keep them."""
        x, ev, ua = exposures_table, events_table, user_attributes_table
        keyed = [(ALL_USERS if b is None else b.name, b) for b in buckets]
        with self.engine.begin() as conn:
            _take_fold_lock(conn)
            self._drop_cells(conn, name, [k for k, _ in keyed])
            stream = {"stream_results": True, "yield_per": 20_000}
            exposures = conn.execute(
                select(x.c.user_key, x.c.branch, x.c.at).where(x.c.experiment == name)
                .order_by(x.c.user_key).execution_options(**stream))
            attributes = iter(conn.execute(
                select(ua.c.user_key, ua.c.name, ua.c.value).where(ua.c.experiment == name)
                .order_by(ua.c.user_key).execution_options(**stream)))
            events = iter(conn.execute(
                select(ev.c.user_key, ev.c.at, ev.c.name, ev.c.value, ev.c.props)
                .select_from(ev.join(x, (x.c.user_key == ev.c.user_key)
                                     & (x.c.experiment == name)))
                .where(ev.c.at >= x.c.at).order_by(ev.c.user_key)
                .execution_options(**stream)))
            metric_cells: dict = {}
            attribute_cells: dict = {}
            next_attribute = next(attributes, None)
            next_event = next(events, None)
            for key, branch, at in exposures:
                while next_attribute is not None and next_attribute[0] < key:
                    next_attribute = next(attributes, None)
                attrs = {}
                while next_attribute is not None and next_attribute[0] == key:
                    attrs[next_attribute[1]] = next_attribute[2]
                    next_attribute = next(attributes, None)
                while next_event is not None and next_event[0] < key:
                    next_event = next(events, None)
                history = []
                while next_event is not None and next_event[0] == key:
                    history.append(tuple(next_event[1:]))
                    next_event = next(events, None)
                history.sort(key=_at)
                x_day = int(at // DAY)
                for bucket_key, bucket in keyed:
                    contributions(bucket, at, attrs, history, metric_cells, attribute_cells,
                                  (name, bucket_key, x_day, branch))
            self._write_cells(conn, metric_cells, attribute_cells)
            now = time.time()
            conn.execute(insert(cell_state_table), [
                {"experiment": name, "bucket": k, "definition": "" if b is None else b.to_json(),
                 "built_at": now} for k, b in keyed])

    @staticmethod
    def _drop_cells(conn, name: str, keys: Sequence[str]) -> None:
        for table in (cells_table, attribute_cells_table, cell_state_table):
            conn.execute(table.delete().where(table.c.experiment == name,
                                              table.c.bucket.in_(list(keys))))

    def report_losses(self, source: str, rows: Iterable[tuple[str, str, int, float, float]]
                      ) -> None:
        """Set the cumulative (kind, experiment, count, first_at, last_at) losses of one
        writing process (absolute values: a repeated report is harmless)."""
        values = [{"source": source[:200], "kind": k, "experiment": e, "count": int(n),
                   "first_at": float(f), "last_at": float(last), "reported_at": time.time()}
                  for k, e, n, f, last in rows]
        if not values:
            return
        lt = losses_table
        with self.engine.begin() as conn:
            for value in values:
                where = (lt.c.source == value["source"], lt.c.kind == value["kind"],
                         lt.c.experiment == value["experiment"])
                if conn.execute(update(lt).where(*where).values(
                        count=value["count"], first_at=value["first_at"],
                        last_at=value["last_at"], reported_at=value["reported_at"])
                        ).rowcount == 0:
                    conn.execute(_insert_ignoring_duplicates(self.engine, lt), value)

    def last_read(self, name: str, since: float | None = None) -> dict | None:
        """The results of the previous read of ``name`` over the same ``since``, if any."""
        rt = reads_table
        with self.engine.connect() as conn:
            row = conn.execute(select(rt.c.results).where(
                rt.c.experiment == name, rt.c.since == _since_key(since))).first()
        return json.loads(row[0]) if row else None

    def save_read(self, name: str, since: float | None, results: dict) -> None:
        """Keep ``results`` as the read the next one continues from."""
        rt = reads_table
        value = {"experiment": name, "since": _since_key(since),
                 "results": json.dumps(results, default=str), "at": time.time()}
        with self.engine.begin() as conn:
            conn.execute(rt.delete().where(rt.c.experiment == name,
                                           rt.c.since == value["since"]))
            conn.execute(insert(rt), value)

    def losses(self, name: str, since: float | None = None,
               until: float | None = None) -> list[Loss]:
        """Exposures of ``name`` and events (of anyone) the hosts counted as lost, per kind,
        over the losses whose span meets [since, until]."""
        lt = losses_table
        query = (select(lt.c.kind, func.sum(lt.c.count), func.min(lt.c.first_at),
                        func.max(lt.c.last_at))
                 .where(((lt.c.kind == "exposure") & (lt.c.experiment == name))
                        | (lt.c.kind == "event"))
                 .group_by(lt.c.kind).order_by(lt.c.kind))
        if since is not None:
            query = query.where(lt.c.last_at >= since)
        if until is not None:
            query = query.where(lt.c.first_at < until)
        with self.engine.connect() as conn:
            return [Loss(k, int(n), float(f), float(last))
                    for k, n, f, last in conn.execute(query) if n]

    # --- reports over a date range -----------------------------------------------------------
    def bucket_report(self, name: str, bucket: Bucket | None, start: float, end: float,
                      metrics: Sequence[str] | None = None) -> BucketRows:
        """Users first exposed in [start, end) who pass ``bucket`` (None: all of them), per
        branch: how many, their attribute values, and per metric the users with an event,
        events, Σ and Σ² of per-user totals over the events from exposure to ``end``.

        Read from the bucket's hourly cells (built first if the bucket has none yet): the
        cells of the whole exposure days in the range and of the hours before ``end``, plus,
        from raw rows, the users exposed on a partial first or last day and the change inside
        a last, partial hour. Equal to :meth:`bucket_report_raw` (the join it replaces).
        """
        key = ALL_USERS if bucket is None else bucket.name
        definition = "" if bucket is None else bucket.to_json()
        cs = cell_state_table
        with self.engine.connect() as conn:
            built = conn.execute(select(cs.c.definition).where(
                cs.c.experiment == name, cs.c.bucket == key)).first()
        if built is None or built[0] != definition:
            self.build_cells(name, [bucket])
        x, ev, c, ac = exposures_table, events_table, cells_table, attribute_cells_table
        wanted = set(metrics) if metrics else None
        sums: dict[tuple, list] = {}
        attribute_sums: dict[tuple, int] = {}
        conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":  # one snapshot for every read below
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            def exposed_between(lo: float, hi: float) -> bool:
                return lo < hi and conn.execute(select(x.c.at).where(
                    x.c.experiment == name, x.c.at >= lo, x.c.at < hi).limit(1)).first() \
                    is not None

            # Whole exposure days. A first day that starts before ``start`` is read raw — its
            # users from ``start`` on — or, when fewer users came before ``start`` that day,
            # summed whole with those users taken away. The last day needs no care: a user
            # exposed after ``end`` has no cell before the hour of the exposure.
            first_day = int(start // DAY)
            raw, excluded = (start, start), (start, start)
            if exposed_between(first_day * DAY, start):
                day_end = min((first_day + 1) * DAY, end)

                def exposed(lo: float, hi: float) -> int:
                    return conn.execute(select(func.count()).select_from(x).where(
                        x.c.experiment == name, x.c.at >= lo, x.c.at < hi)).scalar()

                if exposed(first_day * DAY, start) < exposed(start, day_end):
                    excluded = (first_day * DAY, start)
                else:
                    raw = (start, day_end)
                    first_day += 1
            end_day = -int(-end // DAY)  # the day after the last with time before ``end``
            # Hours: all before ``end``'s hour, and that hour too when nothing happened in it
            # from ``end`` on; else its part before ``end`` is added from raw rows.
            end_hour = int(end // HOUR)
            partial_hour = None
            if end > end_hour * HOUR:
                hour_end = (end_hour + 1) * HOUR
                if conn.execute(select(ev.c.at).where(ev.c.at >= end, ev.c.at < hour_end)
                                .limit(1)).first() is None \
                        and not exposed_between(end, hour_end):
                    end_hour += 1
                else:
                    partial_hour = end_hour * HOUR
            # The days before the cut's day, then that day's hours before the cut.
            day_cut = end_hour - end_hour % 24
            periods = ((24, 0, day_cut), (1, day_cut, end_hour))
            for span, lo, hi in (periods if first_day < end_day else ()):
                where = (c.c.experiment == name, c.c.bucket == key, c.c.span == span,
                         c.c.x_day >= first_day, c.c.x_day < end_day, c.c.hour >= lo,
                         c.c.hour < hi)
                query = (select(c.c.branch, c.c.metric, func.sum(c.c.users), func.sum(c.c.n),
                                func.sum(c.c.total), func.sum(c.c.squares))
                         .where(*where).group_by(c.c.branch, c.c.metric))
                for branch, metric, users, n, total, squares in conn.execute(query):
                    cell = sums.setdefault((branch, metric), [0, 0, 0.0, 0.0])
                    cell[0] += int(users or 0)
                    cell[1] += int(n or 0)
                    cell[2] += float(total or 0)
                    cell[3] += float(squares or 0)
                where = (ac.c.experiment == name, ac.c.bucket == key, ac.c.span == span,
                         ac.c.x_day >= first_day, ac.c.x_day < end_day, ac.c.hour >= lo,
                         ac.c.hour < hi)
                for branch, attribute, value, users in conn.execute(
                        select(ac.c.branch, ac.c.name, ac.c.value, func.sum(ac.c.users))
                        .where(*where).group_by(ac.c.branch, ac.c.name, ac.c.value)):
                    attribute_sums[(branch, attribute, value)] = attribute_sums.get(
                        (branch, attribute, value), 0) + int(users or 0)
            whole = (max(first_day * DAY, start), end)
            # user_key -> (branch, exposed_at, how): "raw" (its state at the end), "hour" (the
            # change in the partial last hour), "out" (exposed before the start: taken away).
            users: dict[int, tuple] = {}
            for (lo, hi), how in ((raw, "raw"), (excluded, "out")):
                if lo < hi:
                    for k, branch, at in conn.execute(select(x.c.user_key, x.c.branch, x.c.at)
                                                      .where(x.c.experiment == name,
                                                             x.c.at >= lo, x.c.at < hi)):
                        users[k] = (branch, at, how)
            if partial_hour is not None and first_day < end_day:
                moved = {k for (k,) in conn.execute(select(ev.c.user_key).where(
                    ev.c.at >= partial_hour, ev.c.at < end).distinct())}
                for chunk in _chunks(sorted(moved)):
                    for k, branch, at in conn.execute(
                            select(x.c.user_key, x.c.branch, x.c.at)
                            .where(x.c.experiment == name, x.c.user_key.in_(chunk),
                                   x.c.at >= whole[0], x.c.at < whole[1])):
                        users[k] = (branch, at, "hour")
                lo = max(partial_hour, whole[0])
                if lo < whole[1]:
                    for k, branch, at in conn.execute(select(x.c.user_key, x.c.branch, x.c.at)
                                                      .where(x.c.experiment == name,
                                                             x.c.at >= lo, x.c.at < whole[1])):
                        users[k] = (branch, at, "hour")
            attrs, histories = self._histories(conn, name, list(users), end)
        cells_cut = end if partial_hour is None else partial_hour  # what the cells hold
        for k, (branch, at, how) in users.items():
            mine = attrs.get(k, {})
            history = histories.get(k, [])
            if how != "out":
                add_state(sums, attribute_sums, (branch,),
                          state(bucket, at, mine, history, end), mine)
            if how != "raw":
                add_state(sums, attribute_sums, (branch,),
                          state(bucket, at, mine, history, cells_cut), mine, -1)
        counts = {b: u for (b, metric), (u, _, _, _) in sums.items() if metric == "" and u}
        attributes: dict[str, dict[str, dict[str, int]]] = {}
        for (branch, attribute, value), n in sorted(attribute_sums.items()):
            if n:
                attributes.setdefault(attribute, {}).setdefault(branch, {})[value] = n
        aggregates = [BranchMetricAggregate(b, metric, u, n, total, squares)
                      for (b, metric), (u, n, total, squares) in sorted(sums.items())
                      if metric and u and (wanted is None or metric in wanted)]
        return BucketRows(counts, attributes, aggregates)

    @staticmethod
    def _histories(conn, name: str, keys: list[int], end: float) -> tuple[dict, dict]:
        """Attributes (in ``name``) and events before ``end`` of the users ``keys``."""
        ev, ua = events_table, user_attributes_table
        attrs: dict[int, dict] = {}
        histories: dict[int, list] = {}
        for chunk in _chunks(keys):
            for k, attribute, value in conn.execute(
                    select(ua.c.user_key, ua.c.name, ua.c.value)
                    .where(ua.c.experiment == name, ua.c.user_key.in_(chunk))):
                attrs.setdefault(k, {})[attribute] = value
            for k, at, metric, value, props in conn.execute(
                    select(ev.c.user_key, ev.c.at, ev.c.name, ev.c.value, ev.c.props)
                    .where(ev.c.user_key.in_(chunk), ev.c.at < end)):
                histories.setdefault(k, []).append((at, metric, value, props))
        for history in histories.values():
            history.sort(key=_at)
        return attrs, histories

    def bucket_report_raw(self, name: str, bucket: Bucket | None, start: float, end: float,
                          metrics: Sequence[str] | None = None) -> BucketRows:
        """What :meth:`bucket_report` answers, by joining the raw exposures and events (the
        reference its cells are tested against). Per-user totals come from the running totals
        minus the events at or after ``end``."""
        x, ua, t, ev = exposures_table, user_attributes_table, totals_table, events_table
        if bucket is None and self._covers_everything(name, start, end):
            # Every exposure and every event so far: the running per-branch sums answer, and
            # attribute values are counted from their index.
            attributes: dict[str, dict[str, dict[str, int]]] = {}
            with self.engine.connect() as conn:
                for attribute, value, branch, n in conn.execute(
                        select(ua.c.name, ua.c.value, ua.c.branch, func.count())
                        .where(ua.c.experiment == name)
                        .group_by(ua.c.name, ua.c.value, ua.c.branch)):
                    attributes.setdefault(attribute, {}).setdefault(branch, {})[value] = int(n)
            return BucketRows(self.exposure_counts(name), attributes,
                              [a for a in self.metric_aggregates(name, metrics) if a.converting])
        members = select(x.c.user_key, x.c.branch, x.c.at).where(
            x.c.experiment == name, x.c.at >= start, x.c.at < end)
        for attribute, values in (bucket.attributes.items() if bucket else ()):
            a = ua.alias()
            members = members.where(exists().where(
                a.c.experiment == name, a.c.user_key == x.c.user_key, a.c.name == attribute,
                a.c.value.in_(list(values))))
        for wanted in (bucket.events if bucket else ()):
            e = ev.alias()
            conditions = [e.c.user_key == x.c.user_key, e.c.name == wanted.name,
                          e.c.at >= x.c.at, e.c.at < end]
            conditions += [e.c.props.like(property_pattern(k, v), escape="\\")
                           for k, v in sorted(wanted.where.items())]
            if wanted.min_count == 1:
                members = members.where(exists().where(*conditions))
            else:
                members = members.where(select(func.count()).where(*conditions)
                                        .scalar_subquery() >= wanted.min_count)
        m = _members_table
        with self.engine.connect() as conn:
            any_late = conn.execute(select(ev.c.at).where(ev.c.at >= end).limit(1)).first()
        if any_late is None:  # a report up to now: the running totals are the answer
            per_user = (select(t.c.branch, t.c.metric, t.c.n, t.c.total)
                        .select_from(t.join(m, (t.c.experiment == name)
                                            & (t.c.user_key == m.c.user_key)))
                        .where(t.c.experiment == name))
        else:
            late_rows = (select(ev.c.user_key, ev.c.name, ev.c.value)
                         .where(ev.c.at >= end)
                         .with_hint(ev, "INDEXED BY ix_gl_events_at", "sqlite"))
            late_rows = late_rows.subquery("late_rows")
            late = (select(late_rows.c.user_key, late_rows.c.name, func.count().label("n"),
                           func.sum(late_rows.c.value).label("total"))
                    .group_by(late_rows.c.user_key, late_rows.c.name).subquery("late"))
            n_in = (t.c.n - func.coalesce(late.c.n, 0)).label("n")
            total_in = (t.c.total - func.coalesce(late.c.total, 0.0)).label("total")
            per_user = (select(t.c.branch, t.c.metric, n_in, total_in)
                        .select_from(t.join(m, (t.c.experiment == name)
                                            & (t.c.user_key == m.c.user_key))
                                     .outerjoin(late, (late.c.user_key == t.c.user_key)
                                                & (late.c.name == t.c.metric)))
                        .where(t.c.experiment == name))
        if metrics:
            per_user = per_user.where(t.c.metric.in_(list(metrics)))
        per_user = per_user.subquery("per_user")
        converting = func.sum(case((per_user.c.n > 0, 1), else_=0))
        metric_query = (select(per_user.c.branch, per_user.c.metric, converting,
                               func.sum(per_user.c.n), func.sum(per_user.c.total),
                               func.sum(per_user.c.total * per_user.c.total))
                        .group_by(per_user.c.branch, per_user.c.metric))
        attribute_query = (select(m.c.branch, ua.c.name, ua.c.value, func.count())
                           .select_from(m.join(ua, (ua.c.experiment == name)
                                               & (ua.c.user_key == m.c.user_key)))
                           .group_by(m.c.branch, ua.c.name, ua.c.value))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL work_mem = '256MB'"))
                conn.execute(text("SET LOCAL jit = off"))
            # The bucket's users, found once and indexed by user: the three queries below join
            # them by key instead of re-running the filters each time.
            m.create(conn)
            conn.execute(insert(m).from_select(["user_key", "branch", "at"], members))
            if self.engine.dialect.name == "postgresql":
                conn.execute(text(f"ANALYZE {m.name}"))
            counts = {b: int(n) for b, n in conn.execute(
                select(m.c.branch, func.count()).group_by(m.c.branch))}
            attributes: dict[str, dict[str, dict[str, int]]] = {}
            for branch, attribute, value, n in conn.execute(attribute_query):
                attributes.setdefault(attribute, {}).setdefault(branch, {})[value] = int(n)
            aggregates = [BranchMetricAggregate(b, metric, int(c or 0), int(n or 0),
                                                float(total or 0), float(squares or 0))
                          for b, metric, c, n, total, squares in conn.execute(metric_query)
                          if c]
            m.drop(conn)
        return BucketRows(counts, attributes, aggregates)

    def _covers_everything(self, name: str, start: float, end: float) -> bool:
        span = self.exposure_span(name)
        if span is None or start > span[0] or end <= span[1]:
            return False
        with self.engine.connect() as conn:
            return conn.execute(select(events_table.c.at).where(events_table.c.at >= end)
                                .limit(1)).first() is None

    def exposure_span(self, name: str) -> tuple[float, float] | None:
        """First and last exposure time of ``name`` (a report's default range)."""
        x = exposures_table
        with self.engine.connect() as conn:
            first, last = conn.execute(select(func.min(x.c.at), func.max(x.c.at))
                                       .where(x.c.experiment == name)).one()
        return None if first is None else (float(first), float(last))

    # --- results ------------------------------------------------------------------------------
    def exposure_counts(self, name: str, since: float | None = None) -> dict[str, int]:
        if since is None:
            bt = branch_totals_table
            query = select(bt.c.branch, bt.c.users).where(bt.c.experiment == name,
                                                          bt.c.metric == EXPOSED)
            with self.engine.connect() as conn:
                return {branch: int(count) for branch, count in conn.execute(query) if count}
        query = (select(exposures_table.c.branch, func.count())
                 .where(exposures_table.c.experiment == name)
                 .group_by(exposures_table.c.branch))
        if since is not None:
            query = query.where(exposures_table.c.at >= since)
        with self.engine.connect() as conn:
            return {branch: int(count) for branch, count in conn.execute(query)}

    def metric_aggregates(self, name: str, metrics: Sequence[str] | None = None,
                          since: float | None = None) -> list[BranchMetricAggregate]:
        """Per (branch, metric): converting users, events, Σ user totals, Σ user totals².

        Only events at or after the user's exposure count (what happened before the user saw a
        branch cannot be its effect). Without ``since`` this reads the per-branch running sums
        (a handful of rows); with it, the raw events are joined and grouped twice.
        """
        if since is None:
            bt = branch_totals_table
            query = select(bt.c.branch, bt.c.metric, bt.c.users, bt.c.n, bt.c.total,
                           bt.c.squares).where(bt.c.experiment == name, bt.c.metric != EXPOSED)
            if metrics:
                query = query.where(bt.c.metric.in_(list(metrics)))
        else:
            per_user = self._per_user_select(name, metrics, since).subquery("per_user")
            query = (select(per_user.c.branch, per_user.c.metric, func.count(),
                            func.sum(per_user.c.n), func.sum(per_user.c.total),
                            func.sum(per_user.c.total * per_user.c.total))
                     .group_by(per_user.c.branch, per_user.c.metric))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # One big aggregation: room to hash in memory, and no JIT compile for a query
                # whose plan is the same every time.
                conn.execute(text("SET LOCAL work_mem = '256MB'"))
                conn.execute(text("SET LOCAL jit = off"))
            rows = conn.execute(query).all()
        return [BranchMetricAggregate(b, m, int(c), int(n), float(t or 0), float(q or 0))
                for b, m, c, n, t, q in rows]

    @staticmethod
    def _per_user_select(name: str, metrics: Sequence[str] | None, since: float | None,
                         with_key: bool = False):
        """Per (user, metric) count and sum of the events at or after the user's exposure."""
        x, ev = exposures_table, events_table
        exposed = select(x.c.user_key, x.c.branch, x.c.at).where(x.c.experiment == name)
        if since is not None:
            exposed = exposed.where(x.c.at >= since)
        exposed = exposed.cte("exposed")
        columns = [exposed.c.branch.label("branch"), ev.c.name.label("metric"),
                   func.count().label("n"), func.sum(ev.c.value).label("total")]
        if with_key:
            columns = [literal(name, String(100)).label("experiment"),
                       ev.c.user_key, ev.c.name.label("metric"), exposed.c.branch.label("branch"),
                       func.count().label("n"), func.sum(ev.c.value).label("total")]
        query = (select(*columns)
                 .select_from(ev.join(exposed, ev.c.user_key == exposed.c.user_key))
                 .where(ev.c.at >= exposed.c.at)
                 .group_by(ev.c.user_key, ev.c.name, exposed.c.branch))
        if since is not None:
            query = query.where(ev.c.at >= since)
        if metrics:
            query = query.where(ev.c.name.in_(list(metrics)))
        return query

    def clear_events(self) -> None:
        """Drop recorded exposures and events (benchmarks and demos start from zero)."""
        with self.engine.begin() as conn:
            conn.execute(exposures_table.delete())
            conn.execute(events_table.delete())
            conn.execute(totals_table.delete())
            conn.execute(cells_table.delete())
            conn.execute(attribute_cells_table.delete())
            conn.execute(cell_state_table.delete())
            conn.execute(branch_totals_table.delete())
            conn.execute(user_attributes_table.delete())
            conn.execute(batches_table.delete())
            conn.execute(losses_table.delete())


def _insert_ignoring_duplicates(engine: Engine, table: Table):
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    return insert(table)


def _claim_batch(conn, batch_id: str | None) -> bool:
    """Record ``batch_id`` as applied in this transaction; False if it already was (the caller
    holds the fold lock, so two writers cannot claim the same id at once)."""
    if batch_id is None:
        return True
    b = batches_table
    if conn.execute(select(b.c.id).where(b.c.id == batch_id)).first() is not None:
        return False
    now = time.time()
    conn.execute(insert(b).values(id=batch_id, at=now))
    if hash(batch_id) % 1000 == 0:  # now and then, forget ids no spool can still hold
        conn.execute(b.delete().where(b.c.at < now - BATCH_MEMORY_SECONDS))
    return True


def _at(event: tuple) -> float:
    return event[0]


def _materialized(conn, experiments: set[str]) -> dict[str, list[tuple[str, Bucket | None]]]:
    """Per experiment, the buckets whose cells are kept: (key, bucket; None for 'all')."""
    if not experiments:
        return {}
    cs = cell_state_table
    found: dict[str, list] = {}
    for experiment, key, definition in conn.execute(
            select(cs.c.experiment, cs.c.bucket, cs.c.definition)
            .where(cs.c.experiment.in_(sorted(experiments)))):
        found.setdefault(experiment, []).append(
            (key, None if key == ALL_USERS else Bucket.from_json(key, definition)))
    return found


def _take_fold_lock(conn) -> None:
    conn.execute(update(fold_lock_table).where(fold_lock_table.c.id == 1)
                 .values(counter=fold_lock_table.c.counter + 1))


def _chunks(items: list, size: int = 5000):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _add(sums: dict, experiment: str, key: int, metric: str, branch: str, value: float) -> None:
    entry = sums.get((experiment, key, metric))
    if entry is None:
        sums[(experiment, key, metric)] = [branch, 1, value]
    else:
        entry[1] += 1
        entry[2] += value


def _has_exposures(conn, name: str) -> bool:
    return conn.execute(select(exposures_table.c.user_id)
                        .where(exposures_table.c.experiment == name).limit(1)).first() is not None


def _record_change(conn, name: str, at: float, by: str, action: str, detail: dict) -> None:
    conn.execute(insert(changes_table).values(experiment=name, at=at, by=by, action=action,
                                              detail=json.dumps(detail, sort_keys=True)))


def _experiment_values(e: Experiment) -> dict:
    return {"branches": json.dumps(e.branches), "status": e.status,
            "rollout_pct": e.rollout_pct, "closed_branch": e.closed_branch,
            "qa_users": json.dumps(list(e.qa_users)), "qa_groups": json.dumps(list(e.qa_groups)),
            "planned_users": e.planned_users, "description": e.description}


def _row_to_experiment(row, attributes: str | None = None) -> Experiment:
    return Experiment(name=row["name"], branches=json.loads(row["branches"]),
                      status=row["status"], rollout_pct=float(row["rollout_pct"]),
                      closed_branch=row["closed_branch"],
                      qa_users=tuple(json.loads(row["qa_users"])),
                      qa_groups=tuple(json.loads(row["qa_groups"])),
                      planned_users=row["planned_users"], description=row["description"] or "",
                      updated_by=row["updated_by"], updated_at=row["updated_at"],
                      version=row["version"],
                      attributes=tuple(json.loads(attributes)) if attributes else ())


def _since_key(since: float | None) -> str:
    return "" if since is None else f"{since:.3f}"
