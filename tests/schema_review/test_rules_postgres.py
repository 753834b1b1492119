"""Every row of the PostgreSQL reference table (and its traps) on a large table."""
from __future__ import annotations

import pytest

from tests.schema_review.helpers import last, review

# (statement(s) — only the last one is judged, verdict, danger, effect)
ROWS = [
    ("ALTER TABLE users ADD COLUMN a integer", "safe", None, "metadata"),
    ("ALTER TABLE users ADD COLUMN a integer DEFAULT 0", "safe", None, "metadata"),
    ("ALTER TABLE users ADD COLUMN a timestamptz DEFAULT now()", "safe", None, "metadata"),
    ("ALTER TABLE users ADD COLUMN a timestamptz DEFAULT clock_timestamp()", "review", "size",
     "rewrite"),
    ("ALTER TABLE users ADD COLUMN a uuid DEFAULT gen_random_uuid()", "review", "size",
     "rewrite"),
    ("ALTER TABLE users ADD COLUMN a float8 DEFAULT random()", "review", "size", "rewrite"),
    ("ALTER TABLE users ADD COLUMN a bigserial", "review", "size", "rewrite"),
    ("ALTER TABLE users ADD COLUMN a int GENERATED ALWAYS AS IDENTITY", "review", "size",
     "rewrite"),
    ("ALTER TABLE users ADD COLUMN a int GENERATED ALWAYS AS (n * 2) STORED", "review", "size",
     "rewrite"),
    ("ALTER TABLE users ADD COLUMN a integer NOT NULL", "review", "fails", "metadata"),
    ("ALTER TABLE users ADD COLUMN a integer NOT NULL DEFAULT 0", "safe", None, "metadata"),
    ("ALTER TABLE users ADD COLUMN a integer CHECK (a > 0)", "review", "size", "scan"),
    ("ALTER TABLE users ADD COLUMN org_id bigint REFERENCES orgs(id)", "safe", None,
     "metadata"),
    ("ALTER TABLE users ADD COLUMN org_id bigint DEFAULT 1 REFERENCES orgs(id)", "review",
     "size", "scan"),
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(40)", "safe", None, "metadata"),
    ("ALTER TABLE users ALTER COLUMN name TYPE text", "safe", None, "metadata"),
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(10)", "review", "compatibility",
     "rewrite"),
    ("ALTER TABLE users ALTER COLUMN t TYPE varchar(50)", "review", "compatibility", "rewrite"),
    ("ALTER TABLE users ALTER COLUMN n TYPE bigint", "review", "size", "rewrite"),
    ("ALTER TABLE users ALTER COLUMN price TYPE numeric(12,2)", "safe", None, "metadata"),
    ("ALTER TABLE users ALTER COLUMN price TYPE numeric(12,4)", "review", "size", "rewrite"),
    ("ALTER TABLE users ALTER COLUMN unknown_col TYPE bigint", "review", "size", "rewrite"),
    ("ALTER TABLE users ALTER COLUMN n SET NOT NULL", "review", "size", "scan"),
    ("ALTER TABLE users ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID;\n"
     "ALTER TABLE users VALIDATE CONSTRAINT n_nn;\n"
     "ALTER TABLE users ALTER COLUMN n SET NOT NULL", "safe", None, "metadata"),
    ("ALTER TABLE users ALTER COLUMN n DROP NOT NULL", "safe", None, "metadata"),
    ("ALTER TABLE users ADD CONSTRAINT c CHECK (n > 0)", "review", "size", "scan"),
    ("ALTER TABLE users ADD CONSTRAINT c CHECK (n > 0) NOT VALID", "safe", None, "metadata"),
    ("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES orgs(id)", "review",
     "size", "scan"),
    ("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES orgs(id) NOT VALID",
     "safe", None, "metadata"),
    ("ALTER TABLE users VALIDATE CONSTRAINT c", "safe", None, "scan"),
    ("BEGIN;\nALTER TABLE users ADD CONSTRAINT c CHECK (n > 0) NOT VALID;\n"
     "ALTER TABLE users VALIDATE CONSTRAINT c", "review", "size", "scan"),
    ("ALTER TABLE users ADD PRIMARY KEY (id)", "review", "size", "index-build"),
    ("ALTER TABLE users ADD CONSTRAINT u_email UNIQUE (email)", "review", "size",
     "index-build"),
    ("ALTER TABLE users ADD CONSTRAINT u_email UNIQUE USING INDEX users_email_idx", "safe",
     None, "metadata"),
    ("ALTER TABLE users ADD CONSTRAINT pk PRIMARY KEY USING INDEX users_n_idx", "review",
     "size", "scan"),
    ("CREATE INDEX users_n_idx ON users (n)", "review", "size", "index-build"),
    ("CREATE UNIQUE INDEX users_n_idx ON users (n)", "review", "size", "index-build"),
    ("CREATE INDEX CONCURRENTLY users_n_idx ON users (n)", "safe", None, "index-build"),
    ("BEGIN;\nCREATE INDEX CONCURRENTLY users_n_idx ON users (n)", "review", "fails",
     "index-build"),
    ("DROP INDEX users_n_idx", "review", "size", "metadata"),
    ("CREATE TABLE nt (id int);\nCREATE INDEX nt_i ON nt (id);\nDROP INDEX nt_i", "safe", None,
     "metadata"),
    ("DROP INDEX CONCURRENTLY users_n_idx", "safe", None, "metadata"),
    ("ALTER TABLE users RENAME COLUMN n TO m", "review", "compatibility", "metadata"),
    ("ALTER TABLE users RENAME TO people", "review", "compatibility", "metadata"),
    ("ALTER TABLE users DROP COLUMN n", "review", "compatibility", "metadata"),
    ("DROP TABLE users", "review", "compatibility", "metadata"),
    ("TRUNCATE users", "review", "compatibility", "metadata"),
    ("VACUUM FULL users", "review", "size", "rewrite"),
    ("VACUUM users", "safe", None, "none"),
    ("CLUSTER users USING users_n_idx", "review", "size", "rewrite"),
    ("ALTER TABLE users SET TABLESPACE fast", "review", "size", "rewrite"),
    ("ALTER TABLE users SET LOGGED", "review", "size", "rewrite"),
    ("ALTER TABLE users SET UNLOGGED", "review", "size", "rewrite"),
    ("ALTER TYPE mood ADD VALUE 'calm'", "safe", None, "metadata"),
    ("ALTER TABLE users ENABLE ROW LEVEL SECURITY", "review", "compatibility", "metadata"),
    ("ALTER TABLE users SET SCHEMA archive", "review", "compatibility", "metadata"),
    ("ALTER TABLE users ALTER COLUMN n DROP DEFAULT", "review", "compatibility", "metadata"),
    ("ALTER TABLE users ALTER COLUMN n SET DEFAULT 3", "safe", None, "metadata"),
    ("ALTER TABLE users ALTER COLUMN n SET STATISTICS 500", "safe", None, "metadata"),
    ("REINDEX TABLE users", "review", "size", "index-build"),
    ("REINDEX TABLE CONCURRENTLY users", "safe", None, "index-build"),
    ("CREATE TABLE users_copy AS SELECT * FROM users", "safe", None, "none"),
    ("UPDATE users SET n = 0", "review", "size", "none"),
    ("SET lock_timeout = '2s'", "safe", None, "none"),
    ("DO $$ BEGIN CREATE INDEX users_n_idx ON users (n); END $$", "review", "size",
     "index-build"),
    ("DO $$ BEGIN RAISE NOTICE 'hi'; END $$", "safe", None, "none"),
    ("DO $$ BEGIN EXECUTE 'ALTER TABLE ' || 'users DROP COLUMN n'; END $$", "review",
     "unparsed", "unknown"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$", "safe", None, "none"),
]


@pytest.mark.parametrize("sql,verdict,danger,effect", ROWS, ids=[r[0][-70:] for r in ROWS])
def test_reference_row(sql, verdict, danger, effect):
    findings = last(sql + ";\n", "postgres")
    worst = max(findings, key=lambda f: f.verdict == "review")
    assert (worst.verdict, worst.danger, worst.effect) == (verdict, danger, effect), worst.reasons
    if verdict == "review" and danger != "unparsed":
        assert worst.alternative


def test_create_index_alternative_is_the_concurrent_rewrite():
    finding = last("CREATE INDEX users_n_idx ON users (n);", "postgres")[0]
    assert "CREATE INDEX CONCURRENTLY users_n_idx ON users (n);" in finding.alternative


def test_add_constraint_alternative_is_not_valid_then_validate():
    finding = last("ALTER TABLE users ADD CONSTRAINT c CHECK (n > 0);", "postgres")[0]
    assert "ADD CONSTRAINT c CHECK (n > 0) NOT VALID;" in finding.alternative
    assert "VALIDATE CONSTRAINT c" in finding.alternative


def test_new_table_in_the_change_is_small():
    sql = ("CREATE TABLE events (id bigint PRIMARY KEY, kind text);\n"
           "CREATE INDEX events_kind ON events (kind);\n"
           "ALTER TABLE events ADD COLUMN at timestamptz NOT NULL;\n")
    assert review(sql, "postgres").exit_code == 0


def test_transaction_ends_at_commit():
    sql = ("BEGIN;\nALTER TABLE users ADD CONSTRAINT c CHECK (n > 0) NOT VALID;\nCOMMIT;\n"
           "ALTER TABLE users VALIDATE CONSTRAINT c;\n")
    assert last(sql, "postgres")[0].verdict == "safe"


def test_enum_add_value_in_transaction_fails_before_pg12_only():
    sql = "BEGIN;\nALTER TYPE mood ADD VALUE 'calm';\n"
    assert last(sql, "postgres", "11")[0].danger == "fails"
    assert last(sql, "postgres", "12")[0].verdict == "safe"


def test_set_not_null_after_check_needs_pg12():
    sql = ("ALTER TABLE users ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID;\n"
           "ALTER TABLE users VALIDATE CONSTRAINT n_nn;\n"
           "ALTER TABLE users ALTER COLUMN n SET NOT NULL;\n")
    assert last(sql, "postgres", "11")[0].effect == "scan"


def test_syntax_error_is_unparsed_not_a_crash():
    report = review("ALTER TABLE users ADD COLUMN;\nSELECT 1;\n", "postgres")
    assert report.findings[0].danger == "unparsed" and report.findings[0].line == 1
    assert report.findings[1].verdict == "safe"


def test_unknown_old_type_says_may_rewrite_and_names_the_free_cases():
    [finding] = last("ALTER TABLE users ALTER COLUMN unknown_col TYPE text", "postgres")
    assert "may rewrite (old type unknown" in finding.reasons[0]
    assert "varchar → text" in finding.reasons[0] and finding.verdict == "review"
