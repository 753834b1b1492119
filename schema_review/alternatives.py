"""The safe way to do what a flagged statement wanted: concrete rewrites for Postgres, and for
large MySQL tables a gh-ost / pt-online-schema-change command line plus the application-level
plan (new table, copy on read, batched backfill, swap) that IMVU used.
"""
from __future__ import annotations

import re
import shlex

from schema_review.model import Operation

# Patterns as text, compiled (and cached by re) on first use: only MySQL's online-schema-change
# advice needs them, and a PostgreSQL run should not compile them at every start.
_ALTER_PREFIX = r"^\s*alter\s+(?:online\s+|ignore\s+)*table\s+(?:`[^`]*`|[\w$.]+)\s*"
_ALG_LOCK = r",?\s*\b(algorithm|lock)\s*=?\s*\w+"
_CREATE_INDEX = (r"^\s*create\s+(unique\s+|fulltext\s+|spatial\s+)?index\s+(`[^`]*`|[\w$]+)\s+"
                 r"(?:using\s+\w+\s+)?on\s+(?:`[^`]*`|[\w$.]+)\s*(\(.*\))")


def alter_clause(statement: str) -> str:
    """The part gh-ost / pt-osc want: ``ADD INDEX i (a)`` from ``ALTER TABLE t ADD INDEX i (a),
    ALGORITHM=INPLACE`` or from ``CREATE INDEX i ON t (a)``."""
    index = re.match(_CREATE_INDEX, statement, re.IGNORECASE | re.DOTALL)
    if index:
        kind = (index.group(1) or "").strip().upper()
        columns = re.sub(_ALG_LOCK, "", index.group(3), flags=re.IGNORECASE).strip()
        return f"ADD {kind + ' ' if kind else ''}INDEX {index.group(2)} {columns}".strip()
    clause = re.sub(_ALTER_PREFIX, "", statement, count=1, flags=re.IGNORECASE)
    return re.sub(_ALG_LOCK, "", clause, flags=re.IGNORECASE).strip().strip(",").strip()


def _mysql_osc(statement: str, table: str, database: str = "app") -> str:
    clause = alter_clause(statement)
    gh_ost = ["gh-ost", f"--database={database}", f"--table={table}", f"--alter={clause}",
              "--chunk-size=1000", "--max-load=Threads_running=25",
              "--critical-load=Threads_running=60", "--cut-over=default", "--execute"]
    pt_osc = ["pt-online-schema-change", f"--alter={clause}", f"D={database},t={table}",
              "--chunk-size=1000", "--max-load=Threads_running=25",
              "--critical-load=Threads_running=50", "--execute"]
    return "\n".join([
        "Run the change online with a shadow-table tool (copies in chunks, throttles on load, "
        "cuts over with a brief rename):",
        "  " + shlex.join(gh_ost),
        "  " + shlex.join(pt_osc),
        "Or the application-level plan:",
        f"  1. CREATE TABLE {table}_new with the new definition (empty: instant).",
        f"  2. Deploy code that writes both {table} and {table}_new (dual-write) and reads "
        f"{table}_new first, falling back to {table} and copying the row it found "
        "(copy on read).",
        f"  3. A background job backfills the rest in primary-key chunks: INSERT IGNORE INTO "
        f"{table}_new SELECT … FROM {table} WHERE id > :last AND id <= :last + 1000; "
        "sleep between chunks, pause while replica lag > 1 s.",
        f"  4. When the backfill is done, RENAME TABLE {table} TO {table}_old, {table}_new TO "
        f"{table}; drop {table}_old in a later deploy.",
    ])


def _expand_contract(op: Operation) -> str:
    return "\n".join([
        "Expand, then contract, in separate deploys (the previous release keeps running "
        "against this schema during the canary):",
        "  1. Expand: add the new column/table (nullable or with a default); deploy code that "
        "writes both and reads the new one.",
        "  2. Backfill in batches.",
        f"  3. Contract: only once no running release uses it, {op.kind.replace('_', ' ')} in "
        "its own migration (approve it then).",
    ])


def _pg_lock_timeout() -> str:
    return "SET lock_timeout = '2s';  -- bounds the wait for the lock (hygiene, not a fix)"


def _create_index_concurrently(statement: str) -> str:
    rewritten = re.sub(r"^(\s*create\s+(?:unique\s+)?index)\s+(?!concurrently)",
                       r"\1 CONCURRENTLY ", statement.strip().rstrip(";"), count=1,
                       flags=re.IGNORECASE)
    return "\n".join([
        "Build the index without blocking writes (outside any transaction block):",
        f"  {rewritten};",
        "  -- if it fails it leaves an INVALID index: DROP INDEX CONCURRENTLY it and retry",
    ])


def _not_valid(statement: str, op: Operation) -> str:
    base = statement.strip().rstrip(";")
    name = op.get("name") or "<constraint_name>"
    if re.search(r"\badd\s+constraint\b", base, re.IGNORECASE) and not re.search(
            r"\bnot\s+valid\b", base, re.IGNORECASE):
        first = f"{base} NOT VALID;"
    else:
        first = (f"ALTER TABLE {op.table} ADD CONSTRAINT {name} … NOT VALID;  -- add the "
                 "constraint separately")
    return "\n".join([
        "Add the constraint without scanning, then validate without blocking (separate "
        "transactions):",
        f"  {_pg_lock_timeout()}",
        f"  {first}",
        "  COMMIT;",
        f"  ALTER TABLE {op.table} VALIDATE CONSTRAINT {name};  -- SHARE UPDATE EXCLUSIVE",
    ])


def _not_null_via_check(op: Operation) -> str:
    column = op.get("column")
    column = column.name if hasattr(column, "name") else (column or "<column>")
    table = op.table
    return "\n".join([
        "Make the column NOT NULL without a long lock (PG 12+):",
        f"  ALTER TABLE {table} ADD COLUMN … (nullable, or keep it nullable) ;",
        f"  -- backfill in batches: UPDATE {table} SET {column} = … WHERE id BETWEEN :a AND :b;",
        f"  ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_not_null "
        f"CHECK ({column} IS NOT NULL) NOT VALID;",
        f"  ALTER TABLE {table} VALIDATE CONSTRAINT {table}_{column}_not_null;",
        f"  ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;  -- no scan: the check proves "
        "it",
        f"  ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_not_null;",
    ])


def _add_column_backfill(op: Operation) -> str:
    column = op.get("column")
    name = column.name if column is not None else "<column>"
    return "\n".join([
        "Add the column without rewriting the table:",
        f"  ALTER TABLE {op.table} ADD COLUMN {name} <type>;  -- no default: metadata only",
        f"  ALTER TABLE {op.table} ALTER COLUMN {name} SET DEFAULT <expr>;  -- new rows only",
        "  -- backfill existing rows in batches of ~1000 by primary key, with pauses:",
        f"  UPDATE {op.table} SET {name} = <expr> WHERE id > :last AND id <= :last + 1000 "
        f"AND {name} IS NULL;",
    ])


def _new_column_swap(op: Operation) -> str:
    column = op.get("column") or "<column>"
    table = op.table
    return "\n".join([
        "Change the type without a rewrite under lock:",
        f"  ALTER TABLE {table} ADD COLUMN {column}_new <new type>;",
        f"  -- deploy code writing both {column} and {column}_new (or a trigger)",
        f"  -- backfill in batches: UPDATE {table} SET {column}_new = {column}::<new type> "
        "WHERE id BETWEEN :a AND :b;",
        f"  -- then, in a later deploy: rename {column}_new to {column} and drop the old column",
    ])


def _unique_index_concurrently(op: Operation) -> str:
    table = op.table
    cols = ", ".join(op.get("columns") or ["<columns>"])
    name = op.get("name") or f"{table}_key"
    kind = "PRIMARY KEY" if op.get("kind") == "primary_key" else "UNIQUE"
    return "\n".join([
        "Build the index concurrently, then attach it (fast):",
        f"  CREATE UNIQUE INDEX CONCURRENTLY {name}_idx ON {table} ({cols});",
        f"  ALTER TABLE {table} ADD CONSTRAINT {name} {kind} USING INDEX {name}_idx;",
    ])


def _batched_dml(op: Operation) -> str:
    return "\n".join([
        "Change the rows in small batches from a background job, not one statement:",
        "  -- repeat until no row changes, sleeping between batches:",
        f"  UPDATE {op.table} SET … WHERE id > :last AND id <= :last + 1000;",
    ])


def alternative_for(kind: str | None, dialect: str, op: Operation, statement: str,
                    table: str | None) -> str | None:
    """Text of the safe alternative for an assessment's ``alternative_kind``."""
    if kind is None:
        return None
    table = table or op.table or "<table>"
    if kind == "osc":
        if dialect == "postgres":
            return _new_column_swap(op)
        return _mysql_osc(statement, table)
    if kind == "expand-contract":
        return _expand_contract(op)
    if kind == "algorithm":
        return ("Remove the ALGORITHM=/LOCK= clause (or alter_algorithm) that this change cannot "
                "honour, or split the ALTER so each part can; for a large table run it with "
                "gh-ost / pt-online-schema-change instead.")
    if kind == "create-index-concurrently":
        return _create_index_concurrently(statement)
    if kind == "not-valid-validate":
        return _not_valid(statement, op)
    if kind == "not-null-via-check":
        return _not_null_via_check(op)
    if kind == "add-column-backfill":
        return _add_column_backfill(op)
    if kind == "new-column-swap":
        return _new_column_swap(op)
    if kind == "unique-index-concurrently":
        return _unique_index_concurrently(op)
    if kind == "mariadb-encryption":
        return ("MariaDB spells it ENCRYPTED=YES and needs a key management plugin "
                "(file_key_management or a KMS); encrypting an existing table rebuilds it, so "
                f"for a large one run gh-ost / pt-online-schema-change on {table}.")
    if kind == "drop-index-concurrently":
        rewritten = re.sub(r"^(\s*drop\s+index)\s+(?!concurrently)", r"\1 CONCURRENTLY ",
                           statement.strip().rstrip(";"), count=1, flags=re.IGNORECASE)
        return "\n".join([
            "Drop the index without queueing every query on the table behind the lock "
            "(outside any transaction block):",
            f"  {rewritten};"])
    if kind == "reindex-concurrently":
        return f"REINDEX TABLE CONCURRENTLY {table};  -- outside a transaction block"
    if kind == "pg-repack":
        return (f"Use pg_repack (pg_repack --table={table} --no-order) to rewrite online, or "
                "schedule the rewrite in a maintenance window.")
    if kind == "outside-transaction":
        return ("Run this statement on its own, outside BEGIN/COMMIT (most migration tools "
                "have a per-migration 'no transaction' switch).")
    if kind == "batched-dml":
        return _batched_dml(op)
    return None
