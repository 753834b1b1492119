"""The review's records behave as the dataclasses they replaced: equality, repr, read-only
versions and statements, and a Finding read back from its JSON contract."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from schema_review.model import ColumnInfo, Finding, Operation, ServerVersion
from schema_review.review import ReviewSettings, review_texts
from schema_review.split import Statement


def test_equality_and_repr_follow_the_fields():
    assert ColumnInfo("a", "int") == ColumnInfo("a", "int", (), True)
    assert ColumnInfo("a", "int") != ColumnInfo("a", "int", nullable=False)
    assert ColumnInfo("a", "int") != Operation("a")
    assert repr(Operation("drop_column", "t", {"column": "c"})) == \
        "Operation(kind='drop_column', table='t', attrs={'column': 'c'})"
    first, second = Operation("other"), Operation("other")
    first.attrs["x"] = 1
    assert second.attrs == {}  # a fresh dict each, as default_factory gave
    with pytest.raises(TypeError):
        hash(ColumnInfo("a", "int"))


def test_versions_and_statements_are_read_only_and_hashable():
    version = ServerVersion.parse("mysql", "10.11.6-MariaDB")
    assert version == ServerVersion("mariadb", (10, 11, 6))
    assert {version, ServerVersion("mariadb", (10, 11, 6))} == {version}
    with pytest.raises(AttributeError):
        version.flavour = "mysql"
    statement = Statement("SELECT 1", 3, "m.sql")
    assert statement == Statement("SELECT 1", 3, "m.sql") and hash(statement)
    with pytest.raises(AttributeError):
        statement.line = 4


def test_a_finding_comes_back_from_its_json():
    report = review_texts([("m.sql", "ALTER TABLE t DROP COLUMN c;\nCREATE TABLE n (a int);")],
                          ReviewSettings("postgres"))
    for finding in report.findings:
        data = json.loads(json.dumps(finding.to_dict()))
        assert Finding.from_dict(data) == finding
    assert [f.verdict for f in report.findings] == ["review", "safe"]


def test_the_cli_imports_neither_dataclasses_nor_pglast(tmp_path):
    (tmp_path / "0001.sql").write_text("CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\n")
    code = ("import sys, io, contextlib; from greenlight.cli.main import main; "
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): code = main(['schema', 'check', "
            f"{str(tmp_path)!r}, '--dialect', 'postgres', '--format', 'json'])\n"
            "print(code, sorted(m for m in ('dataclasses', 'inspect', 'pglast', 'sqlglot', "
            "'sqlalchemy', 'git', 'typing') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout == "0 []\n"


def _reference_normalize(sql: str) -> str:
    """normalize_statement as first written (one regex step per character, re.sub of runs)."""
    import re

    quoted = re.compile(r"('(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`[^`]*`)", re.DOTALL)
    parts = quoted.split(sql.strip().rstrip(";").strip())
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\s+", " ", parts[i]).lower()
    return "".join(parts).strip()


def test_normalize_statement_keeps_its_keys():
    # approvals are stored under finding keys: the faster normalization must give the same text
    import random

    from schema_review.model import normalize_statement

    pieces = ["'", '"', "`", "\\", "a", "B", " ", "\n", ";", "  ", "''", "é", "\u2003", "\x1c",
              "\x85", "\xa0", "\t", "İ", "ß"]
    rnd = random.Random(19)
    for _ in range(20_000):
        sql = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 25)))
        assert normalize_statement(sql) == _reference_normalize(sql), sql
    assert normalize_statement("ALTER  TABLE t\n ADD c text DEFAULT 'A  B';") == \
        "alter table t add c text default 'A  B'"


def test_to_dict_has_every_field_in_order():
    finding = review_texts([("m.sql", "DROP TABLE t;")], ReviewSettings("postgres")).findings[0]
    assert list(finding.to_dict()) == [*Finding._fields, "needs_review"]


def test_finding_key_is_sha256_of_path_and_normalized_text():
    import hashlib

    from schema_review.model import finding_key

    expected = hashlib.sha256("db/m.sql\0alter table t drop column c".encode()).hexdigest()
    assert finding_key("db/m.sql", "ALTER TABLE t\n  DROP COLUMN c;") == expected[:32]
