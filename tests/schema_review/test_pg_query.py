"""schema_review.pg_query calls libpg_query's C API directly: same trees, same errors as pglast."""
from __future__ import annotations

import subprocess
import sys

import pytest
from pglast import parse_plpgsql as pglast_parse_plpgsql
from pglast.parser import ParseError, parse_sql_json

from schema_review import pg_query

STATEMENTS = [
    "ALTER TABLE users ADD COLUMN flag boolean NOT NULL DEFAULT now()",
    "CREATE INDEX CONCURRENTLY i ON t (a, lower(b)) WHERE c IS NOT NULL",
    "SELECT 'é€😀', $$dollar$$, E'\\n' FROM \"Ünïcode\"",
    "BEGIN; UPDATE t SET a = 1; COMMIT",
    "",
    "-- only a comment",
]
BROKEN = ["selec 1", "SELECT 'é' FROM x WHERE", "ALTER TABLE ADD COLUMN", "CREATE TABLE t (a int"]
DO_BLOCK = ("DO $$ BEGIN IF NOT EXISTS (SELECT 1) THEN EXECUTE 'ALTER TABLE t DROP COLUMN c'; "
            "END IF; END $$")


def test_the_c_api_is_bound():
    # a silent fallback to pglast would pass every other test and lose the start-up saving
    assert pg_query._BOUND is not None


@pytest.mark.parametrize("sql", STATEMENTS)
def test_same_tree_as_pglast(sql):
    import json

    assert pg_query.parse_sql(sql) == json.loads(parse_sql_json(sql))


@pytest.mark.parametrize("sql", BROKEN)
def test_same_error_as_pglast(sql):
    with pytest.raises(ParseError) as ours:
        pg_query.parse_sql(sql)
    with pytest.raises(ParseError) as theirs:
        parse_sql_json(sql)
    assert str(ours.value) == str(theirs.value)
    assert ours.value.args == theirs.value.args


def test_plpgsql_same_as_pglast():
    assert pg_query.parse_plpgsql(DO_BLOCK) == pglast_parse_plpgsql(DO_BLOCK)
    with pytest.raises(ParseError) as ours:
        pg_query.parse_plpgsql("DO $$ BEGIN IF x THEN END $$")
    with pytest.raises(ParseError) as theirs:
        pglast_parse_plpgsql("DO $$ BEGIN IF x THEN END $$")
    assert str(ours.value) == str(theirs.value)


def test_a_postgres_review_does_not_import_pglast():
    sql = "ALTER TABLE t ADD COLUMN c int; DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;"
    code = ("import sys; from schema_review.review import review_texts, ReviewSettings; "
            f"r = review_texts([('m.sql', {sql!r})], ReviewSettings('postgres')); "
            "print(r.statements, [f.operation for f in r.findings], "
            "sorted(m for m in sys.modules if m.startswith('pglast')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "2 ['add_column', 'drop_table'] []\n"
