"""Bad input to ``greenlight schema check`` is a clear one-line error with exit 2, never a
traceback or a silent "all safe"; the reproductions of real migrations give the right exit."""
from __future__ import annotations

import json

from greenlight.cli.main import main
from tests.schema_review.test_dynamic_sql import GUARDED_MODIFY


def _check(argv, capsys):
    code = main(["schema", "check", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_binary_file_is_not_sql(tmp_path, capsys):
    blob = tmp_path / "m" / "0001.sql"
    blob.parent.mkdir()
    blob.write_bytes(bytes(range(256)) * 40)
    code, out, err = _check([str(blob.parent), "--dialect", "postgres"], capsys)
    assert code == 2 and f"{blob}: binary file, not SQL" in err and out == ""


def test_latin1_sql_is_still_reviewed(tmp_path, capsys):
    mig = tmp_path / "0001.sql"
    mig.write_bytes("-- caf\xe9\nALTER TABLE t ADD COLUMN a int;\n".encode("latin-1"))
    code, out, _ = _check([str(mig), "--dialect", "postgres"], capsys)
    assert code == 0 and "1 statement(s)" in out


def test_empty_directory_says_so(tmp_path, capsys):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "README").write_text("no sql here")
    code, _, err = _check([str(tmp_path / "migrations"), "--dialect", "mysql"], capsys)
    assert code == 2 and f"no migration files found under {tmp_path / 'migrations'}" in err


def test_output_into_a_missing_directory(tmp_path, capsys):
    mig = tmp_path / "0001.sql"
    mig.write_text("SELECT 1;\n")
    code, out, err = _check([str(mig), "--dialect", "mysql", "--output",
                             str(tmp_path / "nope" / "r.json")], capsys)
    assert code == 2 and "does not exist" in err and out == ""


def test_db_url_of_another_dialect(tmp_path, capsys):
    mig = tmp_path / "0001.sql"
    mig.write_text("SELECT 1;\n")
    for dialect, url in (("mysql", "postgresql://postgres@127.0.0.1:5432/test"),
                         ("postgres", "mysql+pymysql://root@127.0.0.1:3306/test")):
        code, _, err = _check([str(mig), "--dialect", dialect, "--db-url", url], capsys)
        assert code == 2 and f"--dialect is {dialect}" in err


def test_dynamic_sql_migration_exits_1_with_the_inner_statement(tmp_path, capsys):
    mig = tmp_path / "000101_users_nick.up.sql"
    mig.write_text(GUARDED_MODIFY)
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"tables": {"users": {"rows": 3_000_000}},
                                 "columns": {"users": {"nick": "varchar(10)"}}}))
    code, out, _ = _check([str(mig), "--dialect", "mysql", "--sizes", str(sizes),
                           "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1 and report["exit_code"] == 1
    flagged = [f for f in report["findings"] if f["needs_review"]]
    assert [f["statement"] for f in flagged] == ["ALTER TABLE users MODIFY nick varchar(300)"]


def test_summary_line_and_markdown_come_from_the_json_contract(tmp_path, capsys):
    from schema_review.render import render_markdown, summary_line

    mig = tmp_path / "0001.sql"
    mig.write_text("ALTER TABLE users DROP COLUMN legacy;\nSELECT 1;\n")
    code, out, _ = _check([str(mig), "--dialect", "postgres", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 1 and summary_line(data) == "needs schema review: 1 statement(s)"
    markdown = render_markdown(data)
    assert "`pg.drop-column` on `users`" in markdown and "greenlight schema approve" in markdown
    code, out, _ = _check([str(mig), "--dialect", "postgres", "--format", "markdown"], capsys)
    assert out == markdown
    data["summary"].update(statements_needing_review=0, approved=1)
    assert summary_line(data) == "schema review: 1 migration file(s) safe (1 approved)"
