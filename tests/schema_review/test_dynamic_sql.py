"""SQL a migration builds or stores and runs later is reviewed where it runs: MySQL prepared
statements from constant strings, procedure bodies at CALL, PostgreSQL functions at CALL or
SELECT f(); text that is only known at run time is flagged, never passed as "no change"."""
from __future__ import annotations

from tests.schema_review.helpers import review

# The shape of the real migrations that passed as "no schema change" (exit 0).
GUARDED_MODIFY = """SET @preparedStatement = (SELECT IF(
    (SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS
     WHERE table_name = 'users' AND table_schema = DATABASE() AND column_name = 'nick') > 0,
    'ALTER TABLE users MODIFY nick varchar(300);',
    'SELECT 1'
));
PREPARE alterIfExists FROM @preparedStatement;
EXECUTE alterIfExists;
DEALLOCATE PREPARE alterIfExists;
"""


def _flagged(report):
    return [f for f in report.findings if f.verdict == "review"]


def test_prepared_if_of_literals_is_reviewed_at_execute():
    report = review(GUARDED_MODIFY, "mysql")
    assert report.exit_code == 1
    [finding] = _flagged(report)
    assert finding.line == 8 and finding.statement.startswith("ALTER TABLE users MODIFY nick")
    assert finding.rule == "mysql.extend-varchar-copy"  # varchar(10) → 300 crosses 255 bytes
    assert "run by EXECUTE alterifexists" in finding.reasons[0]


def test_concat_of_variables_set_to_literals_is_folded():
    sql = ("SET @t = 'users';\nSET @c = 'legacy';\n"
           "SET @s = CONCAT('ALTER TABLE ', @t, ' DROP COLUMN ', @c);\n"
           "PREPARE st FROM @s;\nEXECUTE st;\n")
    [finding] = _flagged(review(sql, "mariadb"))
    assert finding.rule == "mysql.drop-column" and finding.table == "users"


def test_prepare_from_a_literal_string():
    sql = "PREPARE st FROM 'ALTER TABLE users ADD INDEX ix (name)';\nEXECUTE st;\n"
    [finding] = _flagged(review(sql, "mysql"))
    assert finding.rule == "mysql.add-index" and finding.danger == "size"


def test_text_known_only_at_run_time_is_flagged_unparsed():
    sql = ("SET @s = (SELECT stmt FROM pending_ddl LIMIT 1);\nPREPARE st FROM @s;\n"
           "EXECUTE st;\n")
    report = review(sql, "mysql")
    [finding] = _flagged(report)
    assert finding.danger == "unparsed" and finding.line == 3 and report.exit_code == 1
    assert "built at run time" in finding.reasons[0]


def test_execute_of_a_statement_prepared_elsewhere_is_flagged():
    report = review("EXECUTE st;\n", "mysql")
    assert [f.danger for f in _flagged(report)] == ["unparsed"]


def test_both_branches_of_an_if_are_reviewed_and_a_noop_branch_is_safe():
    sql = ("SET @s = IF(@x > 0, 'ALTER TABLE users DROP PRIMARY KEY', 'DO 0');\n"
           "PREPARE st FROM @s;\nEXECUTE st;\n")
    report = review(sql, "mysql")
    rules = sorted(f.rule for f in report.findings if f.line == 3)
    assert rules == ["mysql.drop-primary-key", "mysql.no-schema-change"]


PROCEDURE = """DELIMITER //
CREATE PROCEDURE Migrate_Users()
BEGIN
  DECLARE done INT DEFAULT 0;
  IF NOT EXISTS (SELECT 1 FROM information_schema.statistics
                 WHERE table_name = 'users' AND index_name = 'ix_name') THEN
    ALTER TABLE users ADD INDEX ix_name (name);
  END IF;
END//
DELIMITER ;
CALL Migrate_Users();
DROP PROCEDURE Migrate_Users;
"""


def test_procedure_body_is_reviewed_at_the_call():
    report = review(PROCEDURE, "mariadb")
    [finding] = _flagged(report)
    assert finding.line == 11 and finding.rule == "mysql.add-index"
    assert "in migrate_users(), called here" in finding.reasons[0]


def test_procedure_defined_but_not_called_is_not_reviewed():
    report = review(PROCEDURE.split("CALL")[0], "mariadb")
    assert report.exit_code == 0


def test_call_of_a_procedure_from_outside_the_change_is_flagged():
    report = review("CALL some_existing_procedure(1);\n", "mysql")
    assert [f.danger for f in _flagged(report)] == ["unparsed"]


PG_FUNCTION = """CREATE OR REPLACE FUNCTION migrate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  ALTER TABLE users ALTER COLUMN n TYPE bigint;
  EXECUTE 'CREATE INDEX users_n ON users (n)';
END $$;
SELECT migrate();
DROP FUNCTION migrate();
"""


def test_plpgsql_function_body_is_reviewed_at_select_f():
    report = review(PG_FUNCTION, "postgres")
    flagged = _flagged(report)
    assert {f.rule for f in flagged} == {"pg.alter-column-type", "pg.create-index"}
    assert {f.line for f in flagged} == {6}


def test_plpgsql_procedure_with_dynamic_execute_is_flagged_at_call():
    sql = ("CREATE PROCEDURE p(t text) LANGUAGE plpgsql AS $$\nBEGIN\n"
           "  EXECUTE format('ALTER TABLE %I ADD COLUMN x int', t);\nEND $$;\nCALL p('users');\n")
    report = review(sql, "postgres")
    [finding] = _flagged(report)
    assert finding.danger == "unparsed" and finding.line == 5


def test_sql_function_without_a_call_and_ordinary_selects_stay_safe():
    sql = ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM users $$;\n"
           "SELECT now(), lower('A');\n")
    assert review(sql, "postgres").exit_code == 0
    assert review(sql + "SELECT f();\n", "postgres").exit_code == 1  # DELETE without WHERE


def test_tables_created_in_do_blocks_or_if_not_exists_are_new():
    sql = ("DO $$ BEGIN CREATE TABLE audit (id bigint, at timestamptz); END $$;\n"
           "CREATE INDEX audit_at ON audit (at);\n"
           "CREATE TABLE IF NOT EXISTS sessions (id bigint, user_id bigint);\n"
           "ALTER TABLE sessions ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users(id);\n"
           "CREATE INDEX sessions_user ON sessions (user_id);\n")
    report = review(sql, "postgres")
    assert report.exit_code == 0, [(f.line, f.reasons) for f in _flagged(report)]


def test_create_table_if_not_exists_of_a_known_large_table_is_not_new():
    sql = "CREATE TABLE IF NOT EXISTS users (id bigint);\nCREATE INDEX u_n ON users (n);\n"
    report = review(sql, "postgres")
    assert [f.line for f in _flagged(report)] == [2]


def test_procedure_sent_without_delimiter_is_one_statement_reviewed_at_its_call():
    """Migration tools that send the file as one multi-statement string need no DELIMITER:
    the server reads the body to its END, so must the splitter."""
    sql = ("CREATE PROCEDURE Fix_Users ()\nBEGIN\nDECLARE n INT;\n"
           "SELECT CASE WHEN 1 THEN 2 END INTO n;\n"
           "IF (n > 0) THEN\n  ALTER TABLE users DROP COLUMN legacy;\nELSE\n"
           "  UPDATE users SET name = '' WHERE name IS NULL;\nEND IF;\nEND;\n"
           "CALL Fix_Users ();\nDROP PROCEDURE IF EXISTS Fix_Users;\n")
    report = review(sql, "mysql")
    assert report.statements == 3
    [finding] = _flagged(report)
    assert finding.rule == "mysql.drop-column" and finding.line == 11


def test_backslash_escaped_quotes_inside_the_prepared_string():
    sql = ("SET @s = (SELECT IF(1 > 0, 'ALTER TABLE users ALTER d SET DEFAULT \\'{\"a\":1}\\';', "
           "'SELECT 1'));\nPREPARE st FROM @s;\nEXECUTE st;\n")
    report = review(sql, "mysql")
    rules = {f.rule for f in report.findings if f.line == 3}
    assert rules == {"mysql.set-default", "mysql.no-schema-change"}


def test_procedure_without_end_swallowing_the_file_is_flagged():
    sql = ("CREATE PROCEDURE p()\nBEGIN\n  ALTER TABLE users ADD INDEX i (name);\n"
           "ALTER TABLE users DROP COLUMN bio;\n")
    report = review(sql, "mysql")
    assert [(f.line, f.danger) for f in report.findings] == [(1, "unparsed")]
    assert "no END for its BEGIN" in report.findings[0].reasons[0]


def test_then_inside_an_escaped_quote_of_a_condition_is_not_the_then():
    from schema_review.dynamic import strip_control

    piece = r"IF @note = 'it\' then' THEN ALTER TABLE users ADD COLUMN a INT"
    assert strip_control(piece) == "ALTER TABLE users ADD COLUMN a INT"
    assert strip_control("IF (x = 'then') THEN DROP TABLE t") == "DROP TABLE t"
