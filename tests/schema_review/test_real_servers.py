"""The rules checked against the real servers on this machine: what a rule claims happens.

MariaDB 10.11: a statement the rule calls not-instant is refused under
``alter_algorithm=INSTANT``; one that blocks writes is refused with ``LOCK=NONE``.
PostgreSQL 15: a rewrite changes ``pg_class.relfilenode``; a scan moves
``pg_stat_user_tables.seq_scan``; a metadata-only change does neither.
Sizes are read live after ANALYZE.  Each test uses its own uniquely named table.
"""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from schema_review.review import ReviewSettings, review_texts
from schema_review.sizes import LiveDatabase

MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _engine(url):
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"database not reachable: {exc}")
    return engine


@pytest.fixture
def mariadb():
    engine = _engine(MARIADB_URL)
    name = f"sr_{uuid.uuid4().hex[:10]}"
    yield engine, name
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}_o"))
    engine.dispose()


@pytest.fixture
def postgres():
    engine = _engine(POSTGRES_URL)
    name = f"sr_{uuid.uuid4().hex[:10]}"
    yield engine, name
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name} CASCADE"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}_o CASCADE"))
    engine.dispose()


MARIADB_CREATE = ("CREATE TABLE {t} (id INT NOT NULL, name VARCHAR(20) NOT NULL, bio TEXT, "
                  "nick VARCHAR(10) NULL, c ENUM('a','b'), org_id INT, n INT, d INT DEFAULT 1, "
                  "loc POINT NOT NULL, PRIMARY KEY (id), KEY idx_n (n)) ENGINE=InnoDB "
                  "DEFAULT CHARSET=utf8mb4")
# ALTER actions on the table above; the rule (with the live column definitions) decides.
MARIADB_ACTIONS = [
    "ADD COLUMN x INT", "ADD COLUMN x INT FIRST", "ADD COLUMN x INT AUTO_INCREMENT UNIQUE",
    "DROP COLUMN bio", "RENAME COLUMN nick TO nick2", "MODIFY nick VARCHAR(10) NULL FIRST",
    "ALTER COLUMN d SET DEFAULT 5", "MODIFY n BIGINT", "MODIFY nick VARCHAR(100) NULL",
    "MODIFY name VARCHAR(20) NULL", "MODIFY c ENUM('a','b','c')", "MODIFY c ENUM('x','a','b')",
    "ADD INDEX ix (name)", "ADD FULLTEXT INDEX ft (bio)", "ADD SPATIAL INDEX sp (loc)",
    "RENAME INDEX idx_n TO idx_n2", "DROP PRIMARY KEY, ADD PRIMARY KEY (id, name)",
    "DROP PRIMARY KEY", "ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES {t}_o(id)",
    "CONVERT TO CHARACTER SET latin1", "ENGINE=InnoDB", "FORCE", "ADD CHECK (n > 0)",
    "ADD COLUMN g INT AS (n + 1) STORED", "ADD COLUMN v INT AS (n + 1) VIRTUAL",
    "ADD COLUMN x INT, ADD INDEX ix2 (name)", "MODIFY n INT UNSIGNED",
    "ADD COLUMN j LONGTEXT DEFAULT ('[]')", "ADD COLUMN u VARCHAR(36) DEFAULT (UUID())",
    "ADD COLUMN t DATETIME DEFAULT (NOW())", "MODIFY n INT NOT NULL AUTO_INCREMENT",
    "CHANGE n n INT NOT NULL AUTO_INCREMENT", "ENCRYPTION='Y'",
    "DROP INDEX idx_n", "ADD UNIQUE INDEX ux (name)", "ADD COLUMN x INT NOT NULL",
    "ADD COLUMN x INT AFTER id", "ALTER COLUMN d DROP DEFAULT", "ROW_FORMAT=DYNAMIC",
    "MODIFY nick VARCHAR(63)", "MODIFY nick VARCHAR(64)", "MODIFY nick VARCHAR(5)",
    "MODIFY d INT DEFAULT 7", "CHANGE nick nick2 VARCHAR(10) NULL",
    "ADD CONSTRAINT c CHECK (n > 0)", "MODIFY c ENUM('a')", "ADD COLUMN k INT CHECK (k > 0)",
    "ADD COLUMN z INT UNIQUE",
]


def _mariadb_reset(conn, t):
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}_o"))
    conn.execute(sa.text(f"CREATE TABLE {t}_o (id INT PRIMARY KEY)"))
    conn.execute(sa.text(MARIADB_CREATE.format(t=t)))
    conn.execute(sa.text(f"INSERT INTO {t} (id, name, loc) VALUES (1, 'a', POINT(1, 1))"))


def _refused(conn, sql, session=None) -> bool:
    try:
        if session:
            conn.execute(sa.text(session))
        conn.execute(sa.text(sql))
        return False
    except sa.exc.DBAPIError:
        return True
    finally:
        conn.execute(sa.text("SET SESSION alter_algorithm = DEFAULT"))


def _mariadb_verdict(live, statement):
    report = review_texts([("m.sql", statement)], ReviewSettings("mariadb"), live)
    return report.findings


def test_mariadb_refuses_what_the_rules_say_cannot_be_instant_or_lock_none(mariadb):
    engine, t = mariadb
    mismatches = []
    live = None
    with engine.connect() as conn:
        for action in MARIADB_ACTIONS:
            action = action.format(t=t)
            statement = f"ALTER TABLE {t} {action}"
            _mariadb_reset(conn, t)
            live = live or LiveDatabase(MARIADB_URL, "mariadb")  # columns cached: same table
            findings = _mariadb_verdict(live, statement)
            claims_instant = all(f.effect == "instant" for f in findings)
            claims_blocking = any(f.blocks_writes for f in findings)
            refused_instant = _refused(conn, statement, "SET SESSION alter_algorithm='INSTANT'")
            _mariadb_reset(conn, t)
            refused_lock_none = _refused(conn, f"{statement}, LOCK=NONE")
            if claims_instant == refused_instant:
                mismatches.append(f"{action}: rule instant={claims_instant}, server refused "
                                  f"INSTANT={refused_instant}")
            if claims_blocking != refused_lock_none:
                mismatches.append(f"{action}: rule blocks writes={claims_blocking}, server "
                                  f"refused LOCK=NONE={refused_lock_none}")
            # and the rule for the explicit clause predicts the refusal
            clause = _mariadb_verdict(live, f"{statement}, LOCK=NONE")
            if any(f.danger == "fails" for f in clause) != refused_lock_none:
                mismatches.append(f"{action}, LOCK=NONE: rule fails != server")
    assert mismatches == []


def test_mariadb_sizes_after_analyze_and_verdicts(mariadb):
    engine, t = mariadb
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id INT PRIMARY KEY, email VARCHAR(40))"))
        conn.execute(sa.text(
            f"INSERT INTO {t} SELECT seq, CONCAT('u', seq) FROM seq_1_to_3000"))
        conn.execute(sa.text(f"ANALYZE TABLE {t}"))
    live = LiveDatabase(MARIADB_URL, "mariadb")
    size = live.size(t)
    assert size.source == "live" and 2000 <= size.rows <= 4000 and size.bytes > 0
    assert live.column(t, "email").params == (40,)
    assert live.server_version().startswith("10.")
    sql = f"ALTER TABLE {t} ADD INDEX ie (email);\nALTER TABLE {t} MODIFY email VARCHAR(50);\n"
    big = review_texts([("m.sql", sql)], ReviewSettings("mariadb", large_rows=1000), live)
    small = review_texts([("m.sql", sql)], ReviewSettings("mariadb", large_rows=10_000), live)
    assert [f.verdict for f in big.findings] == ["review", "safe"]  # varchar growth is instant
    assert [f.verdict for f in small.findings] == ["safe", "safe"]
    assert big.server_version.startswith("mariadb 10.")


def _pg_state(conn, t):
    relfilenode = conn.execute(sa.text(
        "SELECT relfilenode FROM pg_class WHERE relname = :t"), {"t": t}).scalar()
    conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
    conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    seq_scan = conn.execute(sa.text(
        "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = :t"), {"t": t}).scalar()
    return relfilenode, seq_scan


PG_CASES = [  # (statement, setup) — the rule's effect decides what must be observed
    ("ALTER TABLE {t} ADD COLUMN a integer DEFAULT 0", None),
    ("ALTER TABLE {t} ADD COLUMN a timestamptz DEFAULT now()", None),
    ("ALTER TABLE {t} ADD COLUMN a float8 DEFAULT random()", None),
    ("ALTER TABLE {t} ADD COLUMN a bigserial", None),
    ("ALTER TABLE {t} ADD COLUMN a integer CHECK (a IS NULL OR a > 0)", None),
    ("ALTER TABLE {t} ALTER COLUMN name TYPE varchar(80)", None),
    ("ALTER TABLE {t} ALTER COLUMN name TYPE text", None),
    ("ALTER TABLE {t} ALTER COLUMN n TYPE bigint", None),
    ("ALTER TABLE {t} ALTER COLUMN n SET NOT NULL", None),
    ("ALTER TABLE {t} ADD CONSTRAINT c CHECK (n >= 0)", None),
    ("ALTER TABLE {t} ADD CONSTRAINT c CHECK (n >= 0) NOT VALID", None),
    ("ALTER TABLE {t} VALIDATE CONSTRAINT c0", "ALTER TABLE {t} ADD CONSTRAINT c0 "
     "CHECK (n >= 0) NOT VALID"),
    ("VACUUM FULL {t}", None),
    ("ALTER TABLE {t} SET UNLOGGED", None),
    ("ALTER TABLE {t} RENAME COLUMN n TO m", None),
    ("ALTER TABLE {t} ADD COLUMN a int GENERATED ALWAYS AS IDENTITY", None),
    ("ALTER TABLE {t} ADD COLUMN a int GENERATED ALWAYS AS (n * 2) STORED", None),
    ("ALTER TABLE {t} ADD COLUMN a uuid DEFAULT gen_random_uuid()", None),
    ("ALTER TABLE {t} ADD COLUMN a timestamptz DEFAULT clock_timestamp()", None),
    ("ALTER TABLE {t} ADD COLUMN a bigint REFERENCES {t}(id)", None),
    ("ALTER TABLE {t} ADD COLUMN a bigint DEFAULT 1 REFERENCES {t}(id)", None),
    ("ALTER TABLE {t} ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES {t}(id)", None),
    ("ALTER TABLE {t} ADD CONSTRAINT fk FOREIGN KEY (n) REFERENCES {t}(id) NOT VALID", None),
    ("ALTER TABLE {t} ADD CONSTRAINT u UNIQUE (n)", None),
    ("ALTER TABLE {t} ADD CONSTRAINT u UNIQUE USING INDEX {t}_ui",
     "CREATE UNIQUE INDEX {t}_ui ON {t} (n)"),
    ("CREATE INDEX {t}_n ON {t} (n)", None),
    ("REINDEX TABLE {t}", None),
    ("ALTER TABLE {t} ALTER COLUMN name TYPE varchar(10)", None),
    ("ALTER TABLE {t} ALTER COLUMN n TYPE bigint USING n::bigint", None),
    ("ALTER TABLE {t} ALTER COLUMN n SET DEFAULT 0", None),
    ("ALTER TABLE {t} ALTER COLUMN n DROP DEFAULT", "ALTER TABLE {t} ALTER COLUMN n SET DEFAULT 0"),
    ("ALTER TABLE {t} ALTER COLUMN n DROP NOT NULL",
     "ALTER TABLE {t} ALTER COLUMN n SET NOT NULL"),
    ("ALTER TABLE {t} ALTER COLUMN n SET NOT NULL",
     "ALTER TABLE {t} ADD CONSTRAINT nn CHECK (n IS NOT NULL)"),
    ("ALTER TABLE {t} DROP COLUMN n", None),
    ("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY", None),
    ("CLUSTER {t} USING {t}_pkey", None),
    ("ALTER TABLE {t} SET LOGGED", "ALTER TABLE {t} SET UNLOGGED"),
    ("ALTER TABLE {t} DROP CONSTRAINT c0", "ALTER TABLE {t} ADD CONSTRAINT c0 CHECK (n >= 0)"),
    ("VACUUM {t}", None),
    ("ANALYZE {t}", None),
]


@pytest.mark.parametrize("template,setup", PG_CASES, ids=[c[0][15:60] for c in PG_CASES])
def test_postgres_rewrite_and_scan_claims_hold(postgres, template, setup):
    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id bigint PRIMARY KEY, name varchar(40), "
                             f"n integer)"))
        conn.execute(sa.text(f"INSERT INTO {t} SELECT g, 'u' || g, g FROM "
                             f"generate_series(1, 2000) g"))
        conn.execute(sa.text(f"ANALYZE {t}"))
        if setup:
            conn.execute(sa.text(setup.format(t=t)))
        statement = template.format(t=t)
        live = LiveDatabase(POSTGRES_URL, "postgres")
        # the setup is reviewed too (a validated CHECK lets SET NOT NULL skip its scan), but
        # it already ran: only the statement's own finding is judged against the server
        text = (setup.format(t=t) + ";\n" if setup else "") + statement + ";\n"
        finding = review_texts([("m.sql", text)], ReviewSettings("postgres"),
                               live).findings[-1]
        before = _pg_state(conn, t)
        conn.execute(sa.text(statement))
        after = _pg_state(conn, t)
    rewrote = before[0] != after[0]
    scanned = after[1] > before[1]
    assert rewrote == (finding.effect == "rewrite"), (finding.effect, before, after)
    if finding.effect == "scan":
        assert scanned, (before, after)
    if finding.effect == "metadata":
        assert not scanned and not rewrote


def test_postgres_sizes_after_analyze_and_index_verdict(postgres):
    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id bigint PRIMARY KEY, email text)"))
        conn.execute(sa.text(f"INSERT INTO {t} SELECT g, 'u' || g FROM "
                             f"generate_series(1, 5000) g"))
        conn.execute(sa.text(f"ANALYZE {t}"))
    live = LiveDatabase(POSTGRES_URL, "postgres")
    size = live.size(t)
    assert size.rows == 5000 and size.bytes > 100_000
    assert live.column(t, "email").type == "text"
    sql = f"CREATE INDEX {t}_email ON {t} (email);\n"
    flagged = review_texts([("m.sql", sql)], ReviewSettings("postgres", large_rows=1000), live)
    passed = review_texts([("m.sql", sql)], ReviewSettings("postgres", large_rows=100_000), live)
    assert flagged.exit_code == 1 and passed.exit_code == 0
    assert flagged.server_version.startswith("postgres 1")
    assert "CONCURRENTLY" in flagged.findings[0].alternative


def test_postgres_create_index_concurrently_inside_transaction_really_fails(postgres):
    engine, t = postgres
    sql = f"BEGIN;\nCREATE INDEX CONCURRENTLY {t}_i ON {t} (id);\nCOMMIT;\n"
    finding = [f for f in review_texts([("m.sql", sql)], ReviewSettings("postgres"))
               .findings if f.operation == "create_index"][0]
    assert finding.danger == "fails"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id int)"))
    import psycopg2

    raw = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    try:  # psycopg2 opens a transaction block before the first statement, like BEGIN
        with pytest.raises(psycopg2.Error, match="cannot run inside a transaction block"):
            raw.cursor().execute(f"CREATE INDEX CONCURRENTLY {t}_i ON {t} (id)")
    finally:
        raw.rollback()
        raw.close()


def test_postgres_never_analyzed_table_is_judged_by_its_rows(postgres):
    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id bigint, name varchar(40))"))
        conn.execute(sa.text(f"INSERT INTO {t} SELECT g, 'u' || g FROM "
                             f"generate_series(1, 20000) g"))
        reltuples = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE relname = :t"),
                                 {"t": t}).scalar()
    assert reltuples == -1  # the case: no ANALYZE, no autovacuum yet
    live = LiveDatabase(POSTGRES_URL, "postgres")
    size = live.size(t)
    assert size.bytes < 1 << 30 and 10_000 <= size.rows <= 40_000, size
    assert "never analyzed" in size.source
    sql = f"ALTER TABLE {t} ALTER COLUMN id TYPE text;\n"
    report = review_texts([("m.sql", sql)], ReviewSettings("postgres", large_rows=10_000), live)
    assert report.exit_code == 1 and report.findings[0].danger == "size"


def test_cli_exit_1_for_a_type_change_on_a_never_analyzed_table(postgres, tmp_path, capsys):
    from greenlight.cli.main import main

    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id bigint, name varchar(40))"))
        conn.execute(sa.text(f"INSERT INTO {t} SELECT g, 'u' || g FROM "
                             f"generate_series(1, 20000) g"))
    migration = tmp_path / "0042_widen.sql"
    migration.write_text(f"ALTER TABLE {t} ALTER COLUMN id TYPE numeric;\n")
    code = main(["schema", "check", str(migration), "--dialect", "postgres", "--db-url",
                 POSTGRES_URL, "--large-rows", "10000", "--large-bytes", str(1 << 30)])
    out = capsys.readouterr().out
    assert code == 1 and "never analyzed" in out and "NEEDS REVIEW (size)" in out


def test_estimate_rows_without_statistics():
    from schema_review.sizes import estimate_rows

    assert estimate_rows(189 << 20, None, 70) == (2_022_253, "live: estimated from bytes, "
                                                  "never analyzed")
    assert estimate_rows(8192, 2_000_000, 70)[0] == 2_000_000
    assert estimate_rows(0, None, 70) == (0, "live")
    assert estimate_rows(None, None, None)[0] is None


def test_postgres_plain_drop_index_queues_behind_a_reader_concurrently_does_not_block(postgres):
    """The rule's claim: DROP INDEX waits for ACCESS EXCLUSIVE behind an open transaction
    that read the table (and would queue everyone after it); DROP INDEX CONCURRENTLY does
    not take that lock."""
    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id int)"))
        conn.execute(sa.text(f"CREATE INDEX {t}_i ON {t} (id)"))
    finding = review_texts([("m.sql", f"DROP INDEX {t}_i;\n")],
                           ReviewSettings("postgres", large_rows=0),
                           LiveDatabase(POSTGRES_URL, "postgres")).findings[0]
    assert finding.table == t and finding.verdict == "review"
    assert f"DROP INDEX CONCURRENTLY {t}_i" in finding.alternative
    import psycopg2

    reader = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    reader.cursor().execute(f"SELECT count(*) FROM {t}")  # in a transaction: lock held
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET lock_timeout = '300ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                conn.execute(sa.text(f"DROP INDEX {t}_i"))
    finally:
        reader.rollback()
        reader.close()
    with engine.connect() as conn:  # no reader: the concurrent form goes through
        conn.execute(sa.text(f"DROP INDEX CONCURRENTLY {t}_i"))
        assert conn.execute(sa.text("SELECT count(*) FROM pg_class WHERE relname = :i"),
                            {"i": f"{t}_i"}).scalar() == 0


def test_live_review_scales_the_estimate_by_a_sample_read(postgres):
    engine, t = postgres
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id bigint, name varchar(40))"))
        conn.execute(sa.text(f"INSERT INTO {t} SELECT g, 'u' || g FROM "
                             f"generate_series(1, 5000) g"))
        conn.execute(sa.text(f"ANALYZE {t}"))
    live = LiveDatabase(POSTGRES_URL, "postgres")
    assert live.read_rate(t) > 0 and live.read_rate("no_such_table_here") is None
    report = review_texts([("m.sql", f"ALTER TABLE {t} ALTER COLUMN id TYPE text;\n")],
                          ReviewSettings("postgres", large_rows=1000), live)
    assert any("scaled ×" in reason for reason in report.findings[0].reasons)


def test_postgres_enum_value_used_in_its_adding_transaction_really_fails(postgres):
    engine, t = postgres
    sql = (f"BEGIN;\nALTER TYPE {t}_mood ADD VALUE 'meh';\n"
           f"INSERT INTO {t} (m) VALUES ('meh');\nCOMMIT;\n")
    flagged = [f for f in review_texts([("m.sql", sql)], ReviewSettings("postgres")).findings
               if f.verdict == "review"]
    assert [f.rule for f in flagged] == ["pg.enum-value-used-in-transaction"]
    assert flagged[0].line == 3 and flagged[0].danger == "fails"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TYPE {t}_mood AS ENUM ('ok')"))
        conn.execute(sa.text(f"CREATE TABLE {t} (m {t}_mood)"))
    import psycopg2

    raw = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    try:
        cursor = raw.cursor()
        cursor.execute(f"ALTER TYPE {t}_mood ADD VALUE 'meh'")  # inside psycopg2's transaction
        with pytest.raises(psycopg2.Error, match="unsafe use of new value"):
            cursor.execute(f"INSERT INTO {t} (m) VALUES ('meh')")
    finally:
        raw.rollback()
        raw.close()
    with engine.connect() as conn:  # committed first, the same insert goes through
        conn.execute(sa.text(f"ALTER TYPE {t}_mood ADD VALUE 'meh'"))
        conn.execute(sa.text(f"INSERT INTO {t} (m) VALUES ('meh')"))
        conn.execute(sa.text(f"DROP TABLE {t}"))
        conn.execute(sa.text(f"DROP TYPE {t}_mood"))


PG_FAILS = [  # (statement, rule, error the server gives): each inside a transaction block
    ("CREATE INDEX CONCURRENTLY {t}_i ON {t} (id)", "pg.create-index-concurrently-in-transaction",
     "cannot run inside a transaction block"),
    ("DROP INDEX CONCURRENTLY {t}_pkey", "pg.drop-index-concurrently-in-transaction",
     "cannot run inside a transaction block"),
    ("REINDEX TABLE CONCURRENTLY {t}", "pg.reindex-concurrently-in-transaction",
     "cannot run inside a transaction block"),
    ("VACUUM {t}", "pg.vacuum-in-transaction", "cannot run inside a transaction block"),
    ("ALTER TABLE {t} ADD COLUMN a integer NOT NULL", "pg.add-column-not-null-no-default",
     "contains null values"),
]


@pytest.mark.parametrize("template,rule,error", PG_FAILS, ids=[c[1] for c in PG_FAILS])
def test_postgres_statements_the_rules_say_fail_do_fail(postgres, template, rule, error):
    engine, t = postgres
    statement = template.format(t=t)
    findings = review_texts([("m.sql", f"BEGIN;\n{statement};\nCOMMIT;\n")],
                            ReviewSettings("postgres")).findings
    [finding] = [f for f in findings if f.line == 2]
    assert finding.rule == rule and finding.danger in ("fails", "compatibility")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE TABLE {t} (id int PRIMARY KEY)"))
        conn.execute(sa.text(f"INSERT INTO {t} VALUES (1)"))
    import psycopg2

    raw = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    try:  # psycopg2 opens a transaction block before the first statement, like BEGIN
        with pytest.raises(psycopg2.Error, match=error):
            raw.cursor().execute(statement)
    finally:
        raw.rollback()
        raw.close()
