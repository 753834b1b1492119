"""Every row of the MySQL/MariaDB reference table, on a large table, in both flavours, with and
without explicit ALGORITHM=/LOCK= clauses."""
from __future__ import annotations

import pytest

from tests.schema_review.helpers import last, review

BOTH = ("mysql", "mariadb")

# (statement on the large `users` table, dialects, verdict, danger, effect)
ROWS = [
    ("ALTER TABLE users ADD COLUMN age INT", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users ADD COLUMN age INT FIRST", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users ADD COLUMN id2 INT AUTO_INCREMENT UNIQUE", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ADD COLUMN g INT AS (n + 1) STORED", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ADD COLUMN v INT AS (n + 1) VIRTUAL", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users ADD COLUMN u CHAR(36) DEFAULT (UUID())", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ADD COLUMN j JSON DEFAULT ('[]')", ("mariadb",), "safe", None, "instant"),
    ("ALTER TABLE users ADD COLUMN j JSON DEFAULT ('[]')", ("mysql",), "review", "size", "copy"),
    ("ALTER TABLE users ADD COLUMN k INT CHECK (k > 0)", ("mariadb",), "safe", None, "instant"),
    ("ALTER TABLE users ADD COLUMN z INT UNIQUE", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users CHANGE n n INT NOT NULL AUTO_INCREMENT", BOTH, "review",
     "compatibility", "copy"),
    ("ALTER TABLE users ENCRYPTION='Y'", ("mysql",), "review", "size", "copy"),
    ("ALTER TABLE users ENCRYPTION='Y'", ("mariadb",), "review", "fails", "copy"),
    ("ALTER TABLE users ADD COLUMN k INT NOT NULL", BOTH, "review", "compatibility", "instant"),
    ("ALTER TABLE users DROP COLUMN bio", BOTH, "review", "compatibility", "instant"),
    ("ALTER TABLE users RENAME COLUMN nick TO nickname", BOTH, "review", "compatibility",
     "instant"),
    ("ALTER TABLE users CHANGE nick nickname VARCHAR(10)", BOTH, "review", "compatibility",
     "instant"),
    ("ALTER TABLE users MODIFY nick VARCHAR(10) FIRST", ("mysql",), "review", "size", "rebuild"),
    ("ALTER TABLE users MODIFY nick VARCHAR(10) FIRST", ("mariadb",), "safe", None, "instant"),
    ("ALTER TABLE users ALTER COLUMN d SET DEFAULT 5", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users ALTER COLUMN d DROP DEFAULT", BOTH, "review", "compatibility",
     "instant"),
    ("ALTER TABLE users MODIFY n BIGINT", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users MODIFY n INT UNSIGNED", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users MODIFY nick VARCHAR(60)", BOTH, "safe", None, None),
    ("ALTER TABLE users MODIFY nick VARCHAR(100)", ("mysql",), "review", "size", "copy"),
    ("ALTER TABLE users MODIFY nick VARCHAR(100)", ("mariadb",), "safe", None, "instant"),
    ("ALTER TABLE users MODIFY nick VARCHAR(5)", BOTH, "review", "compatibility", "copy"),
    ("ALTER TABLE users MODIFY name VARCHAR(20)", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users MODIFY nick VARCHAR(10) NOT NULL DEFAULT ''", BOTH, "review", "size",
     "rebuild"),
    ("ALTER TABLE users MODIFY c ENUM('a','b','c')", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users MODIFY c ENUM('x','a','b')", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ADD INDEX idx_name (name)", BOTH, "review", "size", "nocopy"),
    ("CREATE INDEX idx_name ON users (name)", BOTH, "review", "size", "nocopy"),
    ("ALTER TABLE users ADD UNIQUE KEY uk (name)", BOTH, "review", "size", "nocopy"),
    ("ALTER TABLE users ADD FULLTEXT INDEX ft (bio)", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users ADD SPATIAL INDEX sp (loc)", BOTH, "review", "size", "nocopy"),
    ("ALTER TABLE users DROP INDEX idx_n", BOTH, "safe", None, "nocopy"),
    ("DROP INDEX idx_n ON users", BOTH, "safe", None, "nocopy"),
    ("ALTER TABLE users RENAME INDEX idx_n TO idx_n2", BOTH, "safe", None, "instant"),
    ("ALTER TABLE users ADD PRIMARY KEY (id)", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users DROP PRIMARY KEY", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users DROP PRIMARY KEY, ADD PRIMARY KEY (id, name)", BOTH, "review", "size",
     "rebuild"),
    ("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES orgs(id)", BOTH,
     "review", "size", "copy"),
    ("ALTER TABLE users DROP FOREIGN KEY fk", BOTH, "safe", None, "nocopy"),
    ("ALTER TABLE users ADD CHECK (n > 0)", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ADD CONSTRAINT chk CHECK (n > 0)", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4", BOTH, "review", "size", "copy"),
    ("ALTER TABLE users ROW_FORMAT=COMPRESSED", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users KEY_BLOCK_SIZE=8", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users ENGINE=InnoDB", BOTH, "review", "size", "rebuild"),
    ("ALTER TABLE users FORCE", BOTH, "review", "size", "rebuild"),
    ("OPTIMIZE TABLE users", BOTH, "review", "size", "rebuild"),
    ("RENAME TABLE users TO people", BOTH, "review", "compatibility", "instant"),
    ("ALTER TABLE users RENAME TO people", BOTH, "review", "compatibility", "instant"),
    ("DROP TABLE users", BOTH, "review", "compatibility", "instant"),
    ("TRUNCATE TABLE users", BOTH, "review", "compatibility", "instant"),
    ("ALTER TABLE users ADD PARTITION (PARTITION p3 VALUES LESS THAN (2000))", BOTH, "safe",
     None, "nocopy"),
    ("ALTER TABLE users REORGANIZE PARTITION p1 INTO (PARTITION p1a VALUES LESS THAN (5))",
     BOTH, "review", "size", "copy"),
    ("ALTER TABLE users DROP PARTITION p1", BOTH, "review", "compatibility", "nocopy"),
    ("CREATE TABLE users_copy AS SELECT * FROM users", BOTH, "review", "size", "copy"),
    ("UPDATE users SET n = 0", BOTH, "review", "size", "none"),
    ("UPDATE users SET n = 0 WHERE id < 1000", BOTH, "safe", None, "none"),
    ("ALTER TABLE users COMMENT = 'people'", BOTH, "safe", None, "instant"),
]

# Explicit clauses: (statement, dialects, verdict, danger)
CLAUSES = [
    ("ALTER TABLE users ADD COLUMN age INT, ALGORITHM=INSTANT", BOTH, "safe", None),
    ("ALTER TABLE users ADD COLUMN age INT, ALGORITHM=INSTANT, LOCK=NONE", BOTH, "safe", None),
    ("ALTER TABLE users ADD INDEX i (name), ALGORITHM=INSTANT", BOTH, "review", "fails"),
    ("ALTER TABLE users ADD INDEX i (name), ALGORITHM=NOCOPY", ("mariadb",), "review", "size"),
    ("ALTER TABLE users FORCE, ALGORITHM=NOCOPY", ("mariadb",), "review", "fails"),
    ("ALTER TABLE users ADD INDEX i (name), ALGORITHM=INPLACE, LOCK=NONE", BOTH, "review",
     "size"),
    ("ALTER TABLE tiny ADD INDEX i (name), ALGORITHM=INPLACE, LOCK=NONE", BOTH, "safe", None),
    ("CREATE INDEX i ON tiny (name) ALGORITHM=INPLACE LOCK=NONE", BOTH, "safe", None),
    ("CREATE INDEX i ON users (name) ALGORITHM=INSTANT", BOTH, "review", "fails"),
    ("ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4, LOCK=NONE", BOTH, "review", "fails"),
    ("ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4, ALGORITHM=INPLACE", BOTH, "review",
     "fails"),
    ("ALTER TABLE users ADD FULLTEXT INDEX ft (bio), LOCK=NONE", BOTH, "review", "fails"),
    ("ALTER TABLE users ADD COLUMN age INT, ALGORITHM=INPLACE", ("mysql",), "review", "size"),
    ("ALTER TABLE users ADD COLUMN age INT, ALGORITHM=INPLACE", ("mariadb",), "safe", None),
    ("ALTER TABLE users ADD COLUMN age INT, ALGORITHM=COPY", BOTH, "review", "size"),
    ("ALTER TABLE users ADD INDEX i (name), LOCK=SHARED", BOTH, "review", "size"),
    ("ALTER TABLE tiny ADD COLUMN age INT, ALGORITHM=COPY", BOTH, "safe", None),
    ("ALTER TABLE users ADD COLUMN x INT, ADD INDEX ix (name), ALGORITHM=INSTANT", BOTH,
     "review", "fails"),
]


def _cases(rows):
    for row in rows:
        for dialect in row[1]:
            yield pytest.param(dialect, row[0], *row[2:], id=f"{dialect}:{row[0][:70]}")


@pytest.mark.parametrize("dialect,sql,verdict,danger,effect", list(_cases(ROWS)))
def test_reference_row(dialect, sql, verdict, danger, effect):
    findings = last(sql, dialect)
    worst = max(findings, key=lambda f: f.verdict == "review")
    assert (worst.verdict, worst.danger) == (verdict, danger), worst.reasons
    if effect is not None:
        assert worst.effect == effect, worst.reasons
    if verdict == "review":
        assert worst.alternative, "a flagged statement names its safe alternative"


@pytest.mark.parametrize("dialect,sql,verdict,danger", list(_cases(CLAUSES)))
def test_algorithm_and_lock_clauses(dialect, sql, verdict, danger):
    findings = last(sql, dialect)
    worst = max(findings, key=lambda f: (f.verdict == "review", f.danger == "fails"))
    assert (worst.verdict, worst.danger) == (verdict, danger), worst.reasons


def test_versions_move_instant_add_column():
    old = last("ALTER TABLE users ADD COLUMN a INT", "mysql", "8.0.11")[0]
    positioned = last("ALTER TABLE users ADD COLUMN a INT FIRST", "mysql", "8.0.20")[0]
    modern = last("ALTER TABLE users ADD COLUMN a INT FIRST", "mysql", "8.4.0")[0]
    drop_old = last("ALTER TABLE users DROP COLUMN bio", "mysql", "8.0.20")[0]
    maria_old = last("ALTER TABLE users ADD COLUMN a INT FIRST", "mariadb", "10.3.7")[0]
    assert (old.effect, positioned.effect, modern.effect) == ("rebuild", "rebuild", "instant")
    assert drop_old.effect == "rebuild" and drop_old.danger == "compatibility"
    assert maria_old.effect == "rebuild"


def test_table_created_in_the_change_is_small_and_its_columns_known():
    sql = ("CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(10) NOT NULL);\n"
           "ALTER TABLE orders ADD INDEX i (note);\n"
           "ALTER TABLE orders MODIFY note VARCHAR(300) NOT NULL;\n")
    report = review(sql, "mysql")
    assert report.exit_code == 0
    modify = [f for f in report.findings if f.operation == "modify_column"][0]
    assert modify.rule == "mysql.extend-varchar-copy"  # definition came from the CREATE
    assert modify.table_size["source"] == "new"


def test_foreign_key_checks_off_makes_add_foreign_key_in_place():
    sql = ("SET foreign_key_checks = 0;\n"
           "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES orgs(id);\n")
    finding = last(sql, "mysql")[0]
    assert (finding.effect, finding.verdict) == ("nocopy", "safe")


def test_mariadb_session_alter_algorithm_is_honoured():
    sql = "SET SESSION alter_algorithm = 'INSTANT';\nALTER TABLE users ADD INDEX i (name);\n"
    assert last(sql, "mariadb")[0].danger == "fails"
    assert last(sql, "mysql")[0].danger == "size"  # MySQL has no alter_algorithm


def test_unknown_old_definition_assumes_copy_and_says_so():
    finding = last("ALTER TABLE users MODIFY mystery VARCHAR(30)", "mysql")[0]
    assert finding.effect == "copy" and finding.verdict == "review"
    assert any("unknown" in r for r in finding.reasons)


def test_unknown_size_is_configurable():
    sql = "ALTER TABLE elsewhere ADD INDEX i (a)"
    assert review(sql, "mysql").findings[0].verdict == "review"
    assert review(sql, "mysql", unknown_size="safe").findings[0].verdict == "safe"


def test_threshold_decides_large():
    sql = "ALTER TABLE tiny ADD INDEX i (a)"
    assert review(sql, "mysql").findings[0].verdict == "safe"
    assert review(sql, "mysql", large_rows=50).findings[0].verdict == "review"
    assert review(sql, "mysql", large_bytes=10_000).findings[0].verdict == "review"


def test_gh_ost_and_pt_osc_command_lines_carry_the_alter_clause():
    finding = last("ALTER TABLE users ADD INDEX idx_name (name), ALGORITHM=INPLACE, LOCK=NONE",
                   "mysql")[0]
    assert "gh-ost" in finding.alternative and "--table=users" in finding.alternative
    assert "'--alter=ADD INDEX idx_name (name)'" in finding.alternative
    assert "pt-online-schema-change" in finding.alternative
    assert "primary-key chunks" in finding.alternative


def test_executable_comments_are_code():
    sql = "/*!50000 ALTER TABLE users ADD INDEX i (name) */;\n"
    assert last(sql, "mysql")[0].operation == "add_index"
    mariadb_skips = review("/*!80000 ALTER TABLE users ADD INDEX i (name) */;", "mariadb")
    assert mariadb_skips.findings == []
    maria_only = review("/*M!100400 ALTER TABLE users DROP COLUMN bio */;", "mariadb")
    assert maria_only.findings[0].operation == "drop_column"
    assert review("/*M!100400 ALTER TABLE users DROP COLUMN bio */;", "mysql").findings == []


def test_delimiter_blocks_are_not_flagged():
    sql = ("DELIMITER //\nCREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW BEGIN\n"
           "  SET NEW.n = 1;\nEND//\nDELIMITER ;\nALTER TABLE users ADD COLUMN a INT;\n")
    report = review(sql, "mysql")
    assert report.exit_code == 0
    assert [f.line for f in report.findings] == [2, 6]


def test_garbage_is_unparsed_with_file_and_line():
    report = review("SELECT 1;\n\nfrobnicate the users;\n", "mysql", path="m/0009.sql")
    bad = [f for f in report.findings if f.danger == "unparsed"]
    assert [(f.file, f.line) for f in bad] == [("m/0009.sql", 3)]
    assert report.exit_code == 1


def test_unknown_old_type_says_may_copy_not_copies():
    [finding] = last("ALTER TABLE users MODIFY unknown_col VARCHAR(300)", "mysql")
    assert finding.reasons[0].startswith("may copy the table (old definition of "
                                         "users.unknown_col unknown")
