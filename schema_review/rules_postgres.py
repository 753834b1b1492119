"""What PostgreSQL really does for each operation: metadata only, a scan under lock, a table
rewrite, an index build that blocks writes, or a concurrent build; and which operations break
the release still running during a canary.

Facts from shared/reference/online-ddl.md, checked on PostgreSQL 15 by tests/schema_review
(a rewrite changes ``pg_class.relfilenode``; a scan moves ``pg_stat_user_tables.seq_scan``).
"""
from __future__ import annotations

from schema_review.context import SchemaContext
from schema_review.model import Assessment, ColumnInfo, Operation, ServerVersion

_VARLEN_TEXT = {"varchar", "text", "char"}


def _a(rule: str, effect: str, *reasons: str, size: bool = False, compat: bool = False,
       fails: bool = False, blocks: bool = False, alt: str | None = None) -> Assessment:
    return Assessment(rule=rule, effect=effect, size_dependent=size, compatibility=compat,
                      fails=fails, blocks_writes=blocks, reasons=list(reasons),
                      alternative_kind=alt)


def _rewrite(rule: str, what: str, alt: str) -> Assessment:
    return _a(rule, "rewrite", f"{what}: the table and its indexes are rewritten under ACCESS "
              "EXCLUSIVE — reads and writes wait for the whole rewrite (time ∝ table size)",
              size=True, blocks=True, alt=alt)


def _scan(rule: str, what: str, alt: str, lock: str = "ACCESS EXCLUSIVE") -> Assessment:
    blocked = "reads and writes" if lock == "ACCESS EXCLUSIVE" else "writes"
    return _a(rule, "scan", f"{what}: every row is read under {lock} — {blocked} wait for the "
              "whole scan (time ∝ table size)", size=True, blocks=True, alt=alt)


def _metadata(rule: str, what: str) -> Assessment:
    return _a(rule, "metadata", f"{what}: metadata only (brief ACCESS EXCLUSIVE lock)")


def binary_coercible(old: ColumnInfo, new: ColumnInfo) -> bool:
    """Type changes PostgreSQL does without a rewrite (varchar growth, varchar→text, numeric
    precision increase at the same scale)."""
    if old.type == new.type:
        if not new.params:
            return old.type in ("varchar", "numeric", "varbit") or not old.params
        if not old.params:
            return False
        if old.type in ("varchar", "varbit"):
            return new.params[0] >= old.params[0]
        if old.type == "numeric":
            old_scale = old.params[1] if len(old.params) > 1 else 0
            new_scale = new.params[1] if len(new.params) > 1 else 0
            return new.params[0] >= old.params[0] and new_scale == old_scale
        return tuple(new.params) == tuple(old.params)
    if old.type == "varchar" and new.type == "text":
        return True
    if old.type == "text" and new.type == "varchar" and not new.params:
        return True
    if old.type == "cidr" and new.type == "inet":
        return True
    return False


def _narrowing(old: ColumnInfo, new: ColumnInfo) -> bool:
    ranks = {"smallint": 1, "integer": 2, "bigint": 3}
    if old.type in ranks and new.type in ranks:
        return ranks[new.type] < ranks[old.type]
    if old.type in _VARLEN_TEXT and new.type in ("varchar", "char") and new.params:
        return not old.params or (isinstance(old.params[0], int) and new.params[0] < old.params[0])
    if old.type == new.type == "numeric" and old.params and new.params:
        return new.params[0] < old.params[0]
    return False


def _add_column(op: Operation, ctx: SchemaContext) -> Assessment:
    col: ColumnInfo = op.get("column")
    name = col.name if col else "?"
    if op.get("serial"):
        return _rewrite("pg.add-column-serial", f"ADD COLUMN {name} {col.type} fills every row "
                        "from a sequence (volatile nextval default)", "add-column-backfill")
    if op.get("identity"):
        return _rewrite("pg.add-column-identity", f"ADD COLUMN {name} … GENERATED AS IDENTITY "
                        "fills every row", "add-column-backfill")
    if op.get("generated"):
        return _rewrite("pg.add-column-generated", f"ADD COLUMN {name} … GENERATED ALWAYS AS "
                        "(…) STORED computes every row", "add-column-backfill")
    if op.get("volatile_default"):
        return _rewrite("pg.add-column-volatile-default", f"ADD COLUMN {name} with DEFAULT "
                        f"{op.get('volatile_default')}() (volatile: a value per row)",
                        "add-column-backfill")
    if op.get("unknown_default_function"):
        result = _rewrite("pg.add-column-volatile-default", f"ADD COLUMN {name} with DEFAULT "
                          f"{op.get('unknown_default_function')}(…) whose volatility is unknown "
                          "(a volatile function rewrites the table)", "add-column-backfill")
        return result
    parts = []
    if op.get("inline_check"):
        parts.append(_scan("pg.add-column-check", f"ADD COLUMN {name} with an inline CHECK "
                           "validates every row", "not-valid-validate"))
    if op.get("inline_fk") and op.get("non_null_default"):
        parts.append(_scan("pg.add-column-fk-default", f"ADD COLUMN {name} REFERENCES "
                           f"{op.get('inline_fk')} with a DEFAULT validates both tables",
                           "not-valid-validate", lock="SHARE ROW EXCLUSIVE"))
    if op.get("inline_index"):
        parts.append(_a("pg.add-column-index", "index-build", f"ADD COLUMN {name} "
                        f"{op.get('inline_index').upper()} builds an index under ACCESS "
                        "EXCLUSIVE", size=True, blocks=True, alt="unique-index-concurrently"))
    if col is not None and not col.nullable and not col.has_default:
        if ctx.is_new(op.table):
            pass
        else:
            parts.append(_a("pg.add-column-not-null-no-default", "metadata",
                            f"ADD COLUMN {name} NOT NULL without DEFAULT fails on a non-empty "
                            "table, and the running release does not write this column",
                            fails=True, compat=True, alt="not-null-via-check"))
    if parts:
        worst = parts[0]
        for part in parts[1:]:
            worst.reasons.extend(part.reasons)
            worst.size_dependent |= part.size_dependent
            worst.fails |= part.fails
            worst.compatibility |= part.compatibility
            worst.blocks_writes |= part.blocks_writes
        return worst
    return _metadata("pg.add-column", f"ADD COLUMN {name} (no default or a non-volatile "
                     "default, PG 11+)")


def _alter_type(op: Operation, ctx: SchemaContext, v: ServerVersion) -> Assessment:
    column = op.get("column")
    new: ColumnInfo = op.get("new_type")
    old = ctx.column(op.table, column)
    if old is None:
        free = " (varchar → text or a longer varchar would be metadata only)" if \
            new.type in ("text", "varchar") else ""
        return _a("pg.alter-column-type-unknown", "rewrite", f"ALTER COLUMN {column} TYPE "
                  f"{new.render()} may rewrite (old type unknown: no database URL, no columns "
                  f"entry, not created in this change){free}: a rewrite holds ACCESS EXCLUSIVE "
                  "for time ∝ table size", size=True, blocks=True, alt="new-column-swap")
    if op.get("using") is False and binary_coercible(old, new):
        return _metadata("pg.alter-column-type-coercible", f"{old.render()} → {new.render()} "
                         "is binary-coercible (no rewrite)")
    if old.type == "timestamp" and new.type == "timestamptz" and v.at_least(12):
        result = _rewrite("pg.alter-column-type", f"{old.render()} → {new.render()} is free "
                          "only on PG 12+ with a UTC session TimeZone; otherwise",
                          "new-column-swap")
        return result
    result = _rewrite("pg.alter-column-type", f"ALTER COLUMN {column} TYPE {old.render()} → "
                      f"{new.render()}", "new-column-swap")
    if _narrowing(old, new):
        result.compatibility = True
        result.reasons.append("narrowing: values the running release writes may no longer fit")
    return result


def assess_postgres(op: Operation, ctx: SchemaContext, v: ServerVersion) -> Assessment:
    """The rule for one PostgreSQL operation, given what earlier statements established."""
    k = op.kind
    in_tx = ctx.in_transaction
    if k == "add_column":
        return _add_column(op, ctx)
    if k == "alter_column_type":
        return _alter_type(op, ctx, v)
    if k == "set_not_null":
        column = op.get("column")
        if v.at_least(12) and (op.table or "").lower() and \
                ((op.table or "").lower(), (column or "").lower()) in ctx.validated_not_null:
            return _metadata("pg.set-not-null-checked", f"SET NOT NULL on {column}: a validated "
                             f"CHECK ({column} IS NOT NULL) lets PG 12+ skip the scan")
        return _scan("pg.set-not-null", f"SET NOT NULL on {column}", "not-null-via-check")
    if k == "drop_not_null":
        return _metadata("pg.drop-not-null", "DROP NOT NULL")
    if k == "set_default":
        return _metadata("pg.set-default", "SET DEFAULT")
    if k == "drop_default":
        return _a("pg.drop-default", "metadata", f"DROP DEFAULT on {op.get('column')}: instant, "
                  "but the running release may rely on the default when it inserts",
                  compat=True, alt="expand-contract")
    if k == "add_constraint":
        kind = op.get("kind")
        if kind in ("check", "foreign_key"):
            label = "CHECK" if kind == "check" else "FOREIGN KEY"
            if op.get("not_valid"):
                return _metadata("pg.add-constraint-not-valid", f"ADD {label} … NOT VALID (only "
                                 "new rows are checked)")
            lock = "ACCESS EXCLUSIVE" if kind == "check" else "SHARE ROW EXCLUSIVE on both tables"
            return _scan(f"pg.add-{kind.replace('_', '-')}", f"ADD {label} without NOT VALID "
                         "validates every row", "not-valid-validate", lock=lock)
        if kind in ("primary_key", "unique"):
            label = "PRIMARY KEY" if kind == "primary_key" else "UNIQUE"
            if op.get("using_index"):
                if kind == "unique":
                    return _metadata("pg.add-unique-using-index", "ADD UNIQUE USING INDEX")
                columns = op.get("columns") or []
                infos = [ctx.column(op.table, c) for c in columns]
                if infos and all(i is not None and not i.nullable for i in infos):
                    return _metadata("pg.add-primary-key-using-index",
                                     "ADD PRIMARY KEY USING INDEX on NOT NULL columns")
                return _scan("pg.add-primary-key-using-index", "ADD PRIMARY KEY USING INDEX "
                             "runs SET NOT NULL on nullable (or unknown) columns",
                             "not-null-via-check")
            return _a(f"pg.add-{kind.replace('_', '-')}", "index-build", f"ADD {label} builds "
                      "its index under ACCESS EXCLUSIVE: reads and writes wait for the build",
                      size=True, blocks=True, alt="unique-index-concurrently")
        if kind == "exclusion":
            return _a("pg.add-exclusion", "index-build", "ADD EXCLUDE builds an index under "
                      "ACCESS EXCLUSIVE", size=True, blocks=True)
        return _metadata("pg.add-constraint", f"ADD CONSTRAINT ({kind})")
    if k == "validate_constraint":
        if ctx.not_valid_added_in_this_transaction(op.table, op.get("name")):
            return _scan("pg.validate-same-transaction", f"VALIDATE CONSTRAINT {op.get('name')} "
                         "in the same transaction as its ADD … NOT VALID keeps the ADD's ACCESS "
                         "EXCLUSIVE lock through the validation scan", "not-valid-validate")
        return _a("pg.validate-constraint", "scan", "VALIDATE CONSTRAINT scans under SHARE "
                  "UPDATE EXCLUSIVE: reads and writes continue")
    if k == "drop_constraint":
        return _metadata("pg.drop-constraint", "DROP CONSTRAINT")
    if k == "create_index":
        if op.get("concurrently"):
            if in_tx:
                return _a("pg.create-index-concurrently-in-transaction", "index-build",
                          "CREATE INDEX CONCURRENTLY cannot run inside a transaction block: "
                          "the migration fails", fails=True, alt="outside-transaction")
            return _a("pg.create-index-concurrently", "index-build", "CREATE INDEX CONCURRENTLY: "
                      "writes continue (on failure it leaves an INVALID index to drop)")
        return _a("pg.create-index", "index-build", "CREATE INDEX without CONCURRENTLY takes a "
                  "SHARE lock: writes wait for the whole build (time ∝ table size)", size=True,
                  blocks=True, alt="create-index-concurrently")
    if k == "drop_index":
        if op.get("concurrently") and in_tx:
            return _a("pg.drop-index-concurrently-in-transaction", "metadata", "DROP INDEX "
                      "CONCURRENTLY cannot run inside a transaction block", fails=True,
                      alt="outside-transaction")
        if op.get("concurrently"):
            return _a("pg.drop-index-concurrently", "metadata", "DROP INDEX CONCURRENTLY: "
                      "waits for transactions using the index without blocking others")
        return _a("pg.drop-index", "metadata", "DROP INDEX without CONCURRENTLY takes ACCESS "
                  "EXCLUSIVE on the table: it waits behind every open transaction that touched "
                  "the table, and every query on the table queues behind it", size=True,
                  blocks=True, alt="drop-index-concurrently")
    if k == "reindex":
        if op.get("concurrently"):
            if in_tx:
                return _a("pg.reindex-concurrently-in-transaction", "index-build", "REINDEX "
                          "CONCURRENTLY cannot run inside a transaction block", fails=True,
                          alt="outside-transaction")
            return _a("pg.reindex-concurrently", "index-build", "REINDEX CONCURRENTLY: writes "
                      "continue")
        return _a("pg.reindex", "index-build", "REINDEX without CONCURRENTLY blocks writes for "
                  "the rebuild", size=True, blocks=True, alt="reindex-concurrently")
    if k in ("rename_column", "rename_table", "drop_column", "drop_table", "set_schema",
             "enable_rls", "truncate_table", "drop_object"):
        what = {
            "rename_column": f"RENAME COLUMN {op.get('old')} TO {op.get('new')}",
            "rename_table": f"RENAME TABLE {op.table} TO {op.get('new')}",
            "drop_column": f"DROP COLUMN {op.get('column')}", "drop_table": "DROP TABLE",
            "set_schema": f"SET SCHEMA {op.get('schema')}",
            "enable_rls": "ENABLE/FORCE ROW LEVEL SECURITY", "truncate_table": "TRUNCATE",
            "drop_object": f"DROP {str(op.get('object', '')).upper()}"}[k]
        return _a(f"pg.{k.replace('_', '-')}", "metadata", f"{what}: instant, but the release "
                  "still running during the canary uses what this removes or hides",
                  compat=True, alt="expand-contract")
    if k in ("vacuum_full", "cluster", "set_tablespace", "set_logged"):
        what = {"vacuum_full": "VACUUM FULL", "cluster": "CLUSTER",
                "set_tablespace": "SET TABLESPACE", "set_logged": "SET LOGGED/UNLOGGED"}[k]
        return _rewrite(f"pg.{k.replace('_', '-')}", what, "pg-repack")
    if k in ("vacuum", "analyze"):
        if in_tx and k == "vacuum":
            return _a("pg.vacuum-in-transaction", "none", "VACUUM cannot run inside a "
                      "transaction block", fails=True, alt="outside-transaction")
        return _a(f"pg.{k}", "none", f"{k.upper()}: no blocking lock")
    if k == "enum_value_used_in_transaction":
        values = ", ".join(repr(v) for v in op.get("values") or [])
        return _a("pg.enum-value-used-in-transaction", "none", f"uses the enum value {values} "
                  "added by ALTER TYPE … ADD VALUE in the same transaction: PostgreSQL refuses "
                  "it ('unsafe use of new value') until that transaction commits", fails=True,
                  alt="outside-transaction")
    if k == "alter_enum_add_value":
        if in_tx and not v.at_least(12):
            return _a("pg.enum-add-value-in-transaction", "metadata", "ALTER TYPE … ADD VALUE "
                      "cannot run inside a transaction block before PG 12", fails=True,
                      alt="outside-transaction")
        return _metadata("pg.enum-add-value", "ALTER TYPE … ADD VALUE (do not use the new "
                         "value in the same transaction)")
    if k == "create_table":
        return _a("pg.create-table", "none", "a new table: nothing existing is locked")
    if k in ("dml_update", "dml_delete"):
        if op.get("has_where"):
            return _a("pg.dml", "none", "data change limited by WHERE")
        return _a("pg.dml-whole-table", "none", f"{k[4:].upper()} without WHERE rewrites every "
                  "row in one transaction: row locks held and table bloat ∝ size", size=True,
                  alt="batched-dml")
    if k == "lock_tables":
        blocks = int(op.get("mode") or 0) >= 5  # SHARE and stronger block writes
        return _a("pg.lock-table", "none", "LOCK TABLE blocks other sessions until the "
                  "transaction ends", size=blocks, blocks=blocks)
    if k == "metadata":
        return _metadata("pg.metadata", op.get("what") or "metadata change")
    if k in ("set_session", "transaction", "other"):
        return _a("pg.no-schema-change", "none", "no schema change")
    return _a("pg.unknown-operation", "rewrite", f"operation {k} has no rule", size=True)
