"""The front (splitter + parsers + rules) never raises: garbage and huge input always give
findings (unparsed ones with file and line) or nothing, never a traceback."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema_review.review import ReviewSettings, review_texts
from schema_review.split import split_statements

SQLISH = st.lists(st.sampled_from(
    list("abcdefxyz ();,'\"`$#-*/!\\\n\t=0123456789") + [
        "ALTER TABLE ", "ADD ", "COLUMN ", "INDEX ", "DELIMITER ", "$$", "/*!50000 ", "*/",
        "CREATE ", "DROP ", "MODIFY ", "CONCURRENTLY ", "BEGIN;", "NOT VALID", "DO ", "--",
        "ALGORITHM=INSTANT", "LOCK=NONE", "PARTITION ", "RENAME ", "E'", "$tag$", "\x00"]),
    max_size=80).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=SQLISH, dialect=st.sampled_from(["mysql", "mariadb", "postgres"]))
def test_garbage_never_raises(text, dialect):
    report = review_texts([("m/x.sql", text)], ReviewSettings(dialect))
    for finding in report.findings:
        assert finding.verdict in ("safe", "review")
        assert finding.file == "m/x.sql" and finding.line >= 1
        if finding.danger == "unparsed":
            assert finding.reasons and "unparsed" in finding.reasons[0]


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=200), dialect=st.sampled_from(["mysql", "postgres"]))
def test_split_lines_stay_within_the_file(text, dialect):
    lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for statement in split_statements(text, dialect):
        assert 1 <= statement.line <= lines and statement.sql.strip()


def test_huge_files_are_reviewed():
    """Pathological sizes (an unterminated quote, deep nesting, a flood of comment openers) end
    with a verdict for each statement; how fast is measured in bench/."""
    unterminated = "ALTER TABLE users ADD COLUMN a VARCHAR(10) DEFAULT '" + "x" * 500_000
    many = "ALTER TABLE users ADD COLUMN a INT;\n" * 1500
    deep = "SELECT " + "(" * 5000 + "1" + ")" * 5000 + ";"
    for dialect in ("mysql", "postgres"):
        for text in (unterminated, deep, "/*" * 50_000):
            report = review_texts([("big.sql", text)], ReviewSettings(dialect))
            assert all(f.verdict in ("safe", "review") for f in report.findings)
    report = review_texts([("many.sql", many)], ReviewSettings("mysql"))
    assert report.statements == 1500 and report.findings[-1].line == 1500
