"""greenlight.db on real databases: SQLite's folder, WAL and busy timeout; PostgreSQL and MariaDB
errors with the password masked; every store reports the same error type."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from greenlight.db import DatabaseError, create_tables, masked, open_engine
from greenlight.deploy.ledger import Ledger
from greenlight.errors import UsageError
from greenlight.experiments.store import ExperimentStore
from greenlight.incidents.store import IncidentStore
from greenlight.shards.durations import DurationStore
from schema_review.approvals import ApprovalStore
from schema_review.sizes import LiveDatabase

SECRET = "s3cret-" + uuid.uuid4().hex[:8]

metadata = MetaData()
rows = Table("rows", metadata, Column("id", Integer, primary_key=True))


def test_sqlite_folder_wal_and_busy_timeout(tmp_path):
    path = tmp_path / "deep" / "er" / "store.sqlite"
    engine = open_engine(f"sqlite:///{path}", what="test store", busy_timeout=7.5)
    create_tables(metadata, engine, what="test store")
    assert path.exists()
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7500


def test_sqlite_writer_waits_for_another_writers_lock(tmp_path):
    """A write while another connection holds the write lock waits (busy timeout) instead of
    failing with "database is locked"; a reader is not blocked at all (WAL)."""
    url = f"sqlite:///{tmp_path}/store.sqlite"
    engine = open_engine(url, what="test store", busy_timeout=30)
    create_tables(metadata, engine, what="test store")
    locker = open_engine(url, what="locker").raw_connection()
    locker.isolation_level = None
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("INSERT INTO rows (id) VALUES (1)")
    done = threading.Event()
    failure: list[BaseException] = []

    def write():
        try:
            with engine.begin() as conn:
                conn.execute(insert(rows).values(id=2))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failure.append(exc)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    with engine.connect() as conn:  # WAL: reading while another connection writes
        assert conn.execute(select(rows.c.id)).all() == []
    assert not done.is_set()  # still waiting for the lock
    locker.execute("COMMIT")
    locker.close()
    writer.join(60)
    assert not failure
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(select(rows.c.id))) == [1, 2]


def test_masked_hides_the_password():
    assert masked(f"postgresql://gl:{SECRET}@db.example/gl") == "postgresql://gl:***@db.example/gl"
    assert SECRET not in masked(f"mysql+pymysql://root:{SECRET}@127.0.0.1/x")
    assert masked("sqlite:///var/x.sqlite") == "sqlite:///var/x.sqlite"


def test_bad_url_names_the_store_and_masks_the_password():
    with pytest.raises(DatabaseError) as caught:
        open_engine(f"nosuchdb://u:{SECRET}@h/db", what="deploy ledger")
    message = str(caught.value)
    assert "deploy ledger URL" in message and "is not usable" in message
    assert SECRET not in message and "***" in message
    assert isinstance(caught.value, UsageError)  # the CLI's exit code 2, no traceback


def test_postgresql_error_masks_the_password():
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/gl_missing_{uuid.uuid4().hex[:8]}"
    engine = open_engine(url, what="test store")
    with pytest.raises(DatabaseError) as caught:
        create_tables(metadata, engine, what="test store")
    message = str(caught.value)
    assert "cannot open the test store at postgresql://postgres:***@127.0.0.1:5432/" in message
    assert "does not exist" in message and SECRET not in message


def test_postgresql_timeouts_apply(pg_url):
    engine = open_engine(pg_url, what="test store", statement_timeout_ms=150)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "150ms"


def test_mariadb_refused_password_is_masked():
    url = f"mysql://root:{SECRET}@127.0.0.1:3306/mysql"  # short scheme: PyMySQL is used
    engine = open_engine(url, what="test store")
    assert engine.dialect.driver == "pymysql"
    with pytest.raises(DatabaseError) as caught:
        create_tables(metadata, engine, what="test store")
    message = str(caught.value)
    assert "Access denied" in message
    assert SECRET not in message and "mysql+pymysql://root:***@127.0.0.1:3306/mysql" in message


def test_mariadb_works(tmp_path):
    engine = open_engine("mysql://root@127.0.0.1:3306/mysql", what="test store",
                         statement_timeout_ms=2000)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


DOWN = f"postgresql://gl:{SECRET}@127.0.0.1:1/gl"  # nothing listens on port 1


@pytest.mark.parametrize("open_store", [
    lambda: Ledger(DOWN),
    lambda: IncidentStore(DOWN),
    lambda: ExperimentStore(DOWN),
    lambda: DurationStore(DOWN),
    lambda: ApprovalStore(DOWN),
    lambda: LiveDatabase(DOWN, "postgres"),
], ids=["ledger", "incidents", "experiments", "durations", "approvals", "sizes"])
def test_every_store_reports_a_down_server_the_same_way(open_store):
    with pytest.raises(DatabaseError) as caught:
        open_store()
    message = str(caught.value)
    assert "postgresql://gl:***@127.0.0.1:1/gl" in message
    assert SECRET not in message
    assert "OperationalError" in message
