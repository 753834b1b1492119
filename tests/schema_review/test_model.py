"""The review's model: approval keys that stay put, the JSON contract's field order, and a
CLI that imports only what a PostgreSQL review needs."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

from schema_review.model import Finding
from schema_review.review import ReviewSettings, review_texts


def test_a_postgres_review_imports_no_other_dialects_parser_nor_the_pglast_package(tmp_path):
    (tmp_path / "0001.sql").write_text("CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\n")
    code = ("import sys, io, contextlib; from greenlight.cli.main import main; "
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): code = main(['schema', 'check', "
            f"{str(tmp_path)!r}, '--dialect', 'postgres', '--format', 'json'])\n"
            "print(code, sorted(m for m in ('pglast', 'sqlglot', 'sqlalchemy', 'git') "
            "if m in sys.modules))")
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
    assert list(finding.to_dict()) == [f.name for f in fields(Finding)] + ["needs_review"]


def test_finding_key_is_sha256_of_path_and_normalized_text():
    import hashlib

    from schema_review.model import finding_key

    expected = hashlib.sha256("db/m.sql\0alter table t drop column c".encode()).hexdigest()
    assert finding_key("db/m.sql", "ALTER TABLE t\n  DROP COLUMN c;") == expected[:32]
