"""Approvals store (SQLite and PostgreSQL), the CLI verbs and exit codes, the pre-push check."""
from __future__ import annotations

import json

import pytest

from greenlight.cli.main import main
from greenlight.errors import UsageError
from schema_review.approvals import ApprovalStore
from schema_review.model import finding_key, normalize_statement
from schema_review.prepush import pre_push_check
from schema_review.review import ReviewSettings, review_texts
from tests.conftest import PG_SERVER, fresh_pg_database
from tests.schema_review.helpers import sizes

INDEX_SQL = "-- new index\nCREATE INDEX idx_users_email ON users (email);\n"


def _report(sql, path="migrations/0002_idx.sql"):
    return review_texts([(path, sql)], ReviewSettings("mysql"), sizes("mysql"))


def test_normalized_text_ignores_layout_but_not_edits():
    a = normalize_statement("CREATE  INDEX i\n ON users (email);")
    assert a == normalize_statement("create index i on users (email)")
    assert a != normalize_statement("CREATE INDEX i ON users (name)")
    assert normalize_statement("SELECT 'A  b'") != normalize_statement("SELECT 'a b'")
    assert finding_key("m/1.sql", "X") != finding_key("m/2.sql", "X")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield ApprovalStore(str(tmp_path / "approvals.sqlite"))
        return
    with fresh_pg_database("sr_appr") as name:
        store = ApprovalStore(f"{PG_SERVER}/{name}")
        yield store
        store.engine.dispose()


def test_approve_binds_to_statement_and_edit_loses_it(store):
    report = _report(INDEX_SQL)
    assert report.exit_code == 1
    assert store.record_pending(report.findings, repo="demo", commit="abc", author="Ada") == 1
    pending = store.list_pending()
    assert [(p["file"], p["line"], p["table"], p["author"]) for p in pending] == [
        ("migrations/0002_idx.sql", 2, "users", "Ada")]
    decision = store.approve(pending[0]["key"], "rita", "run at night")
    assert (decision["decision"], decision["user"], decision["commit"]) == (
        "approved", "rita", "abc")
    assert store.list_pending() == []

    again = _report("CREATE INDEX idx_users_email\n  ON users (email);  -- reformatted\n")
    store.annotate(again.findings)
    assert again.exit_code == 0 and again.findings[0].approval["user"] == "rita"

    edited = _report("CREATE INDEX idx_users_email ON users (email, name);\n")
    store.annotate(edited.findings)
    assert edited.exit_code == 1 and edited.findings[0].approval is None

    moved = _report(INDEX_SQL, path="migrations/0003_other.sql")
    store.annotate(moved.findings)
    assert moved.exit_code == 1


def test_reject_keeps_it_flagged_and_unknown_key_is_an_error(store):
    report = _report(INDEX_SQL)
    store.record_pending(report.findings)
    key = report.findings[0].key
    store.reject(key, "rita", "use gh-ost")
    store.annotate(report.findings)
    assert report.exit_code == 1 and report.findings[0].approval["decision"] == "rejected"
    assert store.list_pending()[0]["decision"]["comment"] == "use gh-ost"
    with pytest.raises(UsageError, match="no flagged statement"):
        store.approve("feedface", "rita")
    with pytest.raises(UsageError, match="reviewer"):
        store.approve(key, "  ")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cli_check_approve_pending_exit_codes(tmp_path, capsys):
    mig = _write(tmp_path, "migrations/0002_idx.sql", INDEX_SQL)
    sizes_file = _write(tmp_path, "sizes.json", json.dumps(
        {"tables": {"users": {"rows": 5_000_000, "bytes": 1 << 31}}}))
    db = str(tmp_path / "appr.sqlite")
    args = ["schema", "check", str(mig.parent), "--dialect", "mariadb", "--sizes",
            str(sizes_file), "--approvals", db, "--format", "json", "--commit", "c0ffee"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["statements_needing_review"] == 1
    finding = [f for f in report["findings"] if f["needs_review"]][0]
    assert {"file", "line", "statement", "table", "operation", "rule", "verdict", "reasons",
            "alternative", "key", "table_size"} <= set(finding)
    assert main(["schema", "pending", "--approvals", db, "--format", "json"]) == 0
    pending = json.loads(capsys.readouterr().out)
    assert pending[0]["commit"] == "c0ffee"
    assert main(["schema", "approve", pending[0]["key"], "--user", "rita", "--approvals",
                 db]) == 0
    capsys.readouterr()
    assert main(args) == 0
    capsys.readouterr()
    sarif = args[:-4] + ["--format", "sarif"]
    main(sarif)
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "2.1.0"
    assert out["runs"][0]["results"][0]["suppressions"][0]["status"] == "accepted"


def test_cli_bad_input_is_exit_2_without_traceback(tmp_path, capsys):
    bad_sizes = _write(tmp_path, "sizes.json", "{not json")
    mig = _write(tmp_path, "m/1.sql", "SELECT 1;")
    for argv in (["schema", "check", str(tmp_path / "missing"), "--dialect", "mysql"],
                 ["schema", "check", str(mig), "--dialect", "mysql", "--sizes", str(bad_sizes)],
                 ["schema", "check", str(mig), "--dialect", "mysql", "--db-url",
                  "mysql+pymysql://nobody@127.0.0.1:1/x"]):
        assert main(argv) == 2  # an unexpected exception would escape main() and fail here
        assert "greenlight schema:" in capsys.readouterr().err


def test_cli_changed_since_only_reviews_changed_migrations(make_repo, monkeypatch, capsys):
    repo = make_repo()
    repo.write("migrations/0001_init.sql", "ALTER TABLE users DROP COLUMN legacy;\n")
    base = repo.commit("init")
    repo.write("migrations/0002_add.sql", "ALTER TABLE users ADD COLUMN age INT;\n")
    repo.write("README", "x")
    repo.commit("add column")
    monkeypatch.chdir(repo.path)
    assert main(["schema", "check", "migrations", "--dialect", "mysql", "--changed-since",
                 base, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == ["migrations/0002_add.sql"]
    assert main(["schema", "check", "migrations", "--dialect", "mysql", "--changed-since", "",
                 "--format", "json"]) == 1  # no base: every migration, including the DROP


def test_pre_push_check_refuses_then_override(make_repo, monkeypatch):
    repo = make_repo()
    repo.write("schema_sizes.json", json.dumps({"tables": {"users": {"rows": 5_000_000}}}))
    repo.write("migrations/0001.sql", "CREATE TABLE users (id INT PRIMARY KEY);\n")
    base = repo.commit("init")
    ok, message = pre_push_check(repo.path, base, "HEAD")
    assert ok and "not configured" in message
    repo.git("config", "greenlight.schema.dialect", "mariadb")
    repo.write("migrations/0002.sql", "CREATE INDEX idx_email ON users (email);\n")
    head = repo.commit("index")
    monkeypatch.delenv("GREENLIGHT_SCHEMA_OVERRIDE", raising=False)
    ok, message = pre_push_check(repo.path, base, head)
    assert not ok
    assert "migrations/0002.sql:1" in message and "gh-ost" in message
    assert "GREENLIGHT_SCHEMA_OVERRIDE=1" in message
    monkeypatch.setenv("GREENLIGHT_SCHEMA_OVERRIDE", "1")
    ok, message = pre_push_check(repo.path, base, head)
    assert ok and "pushing anyway" in message
    monkeypatch.delenv("GREENLIGHT_SCHEMA_OVERRIDE")
    repo.write("migrations/0003.sql", "ALTER TABLE users ADD COLUMN age INT;\n")
    head2 = repo.commit("safe")
    assert pre_push_check(repo.path, head, head2)[0]
    repo.git("config", "greenlight.schema.migrations", "db")
    assert pre_push_check(repo.path, base, head) == (True, "schema review: no migration changed")


def test_step_arguments_and_summary_are_pure():
    from greenlight.steps.schema_review import check_arguments, summary_of

    args = check_arguments("migrations", "mariadb", "0" * 40, "abc", sizes="schema_sizes.json",
                           approvals_url="sqlite:////tmp/a.sqlite")
    assert args[:3] == ["schema", "check", "migrations"]
    assert args[args.index("--changed-since") + 1] == ""  # new branch: every migration
    assert args[args.index("--sizes") + 1] == "schema_sizes.json"
    args = check_arguments("db", "postgres", "base1", "head1")
    assert args[args.index("--changed-since") + 1] == "base1" and "--sizes" not in args
    report = {"summary": {"statements_needing_review": 2, "approved": 0, "files": 1}}
    assert summary_of(report) == "needs schema review: 2 statement(s)"
