"""What MySQL 8 / MariaDB (InnoDB) really do for each operation: instant, no-copy (in place,
no rebuild), rebuild (in place), or copy (writes blocked), by flavour and version.

Facts from shared/reference/online-ddl.md, checked against MariaDB 10.11 with
``alter_algorithm=INSTANT`` / ``NOCOPY`` and ``LOCK=NONE`` (see tests/schema_review).
"""
from __future__ import annotations

import re

from schema_review.context import SchemaContext
from schema_review.model import Assessment, ColumnInfo, Operation, ParsedStatement, ServerVersion

LEVEL = {"none": -1, "instant": 0, "nocopy": 1, "rebuild": 2, "copy": 3}
_INT_RANK = {"tinyint": 1, "utinyint": 1, "smallint": 2, "usmallint": 2, "mediumint": 3,
             "umediumint": 3, "int": 4, "uint": 4, "bigint": 5, "ubigint": 5}
_DEFAULT_CHARSET_BYTES = 4  # utf8mb4, the default of MySQL 8 and MariaDB 10.6+
# Defaults MariaDB cannot store once in the metadata: each row gets its own value.
_NONDETERMINISTIC = re.compile(r"\b(uuid|uuid_short|sys_guid|rand|sysdate|connection_id|"
                               r"last_insert_id|nextval|user|current_user)\s*\(", re.I)


def _a(rule: str, effect: str, *reasons: str, size: bool = False, compat: bool = False,
       fails: bool = False, blocks: bool = False, alt: str | None = None) -> Assessment:
    return Assessment(rule=rule, effect=effect, size_dependent=size, compatibility=compat,
                      fails=fails, blocks_writes=blocks, reasons=list(reasons),
                      alternative_kind=alt)


def _copy(rule: str, what: str) -> Assessment:
    return _a(rule, "copy", f"{what}: the table is copied row by row and writes are blocked "
              "for the whole copy (time ∝ table size)", size=True, blocks=True, alt="osc")


def _rebuild(rule: str, what: str) -> Assessment:
    return _a(rule, "rebuild", f"{what}: the table is rebuilt in place; DML continues but time, "
              "I/O and replica lag grow with the table size", size=True, alt="osc")


def _instant(rule: str, what: str) -> Assessment:
    return _a(rule, "instant", f"{what}: metadata only (instant)")


def _add_column(op: Operation, v: ServerVersion) -> Assessment:
    col: ColumnInfo = op.get("column")
    if op.get("auto_increment"):
        return _copy("mysql.add-column-auto-increment", "ADD COLUMN … AUTO_INCREMENT")
    if op.get("generated") == "stored":
        return _copy("mysql.add-column-stored-generated", "ADD COLUMN … STORED (generated)")
    expression = op.get("expression_default")
    if expression and (v.flavour != "mariadb" or _NONDETERMINISTIC.search(expression)):
        why = ("a non-deterministic expression is evaluated for every row" if
               v.flavour == "mariadb" else "MySQL refuses ALGORITHM=INSTANT for any expression "
               "default")
        return _copy("mysql.add-column-expression-default",
                     f"ADD COLUMN with DEFAULT {expression} ({why})")
    if op.get("inline_check") and v.flavour != "mariadb":
        # MariaDB adds it instantly (the new column is NULL in every row: nothing to check)
        return _copy("mysql.add-column-check", "ADD COLUMN with a CHECK constraint")
    if op.get("inline_index") == "primary":
        return _rebuild("mysql.add-column-primary-key", "ADD COLUMN … PRIMARY KEY")
    if op.get("inline_index") == "unique":
        return _rebuild("mysql.add-column-unique", "ADD COLUMN … UNIQUE adds a column and "
                        "builds an index in one ALTER, which is not instant")
    positioned = op.get("position") in ("FIRST", "AFTER")
    compat = col is not None and not col.nullable and not col.has_default
    extra = ("NOT NULL without DEFAULT: INSERTs of the release still running that do not name "
             "the column fail in strict mode",) if compat else ()
    if v.flavour == "mariadb":
        instant = v.at_least(10, 4) or (v.at_least(10, 3, 2) and not positioned)
    else:
        instant = v.at_least(8, 0, 29) or (v.at_least(8, 0, 12) and not positioned)
    if instant:
        return _a("mysql.add-column", "instant", "ADD COLUMN: instant (metadata only) on "
                  f"{v}", *extra, compat=compat, alt="expand-contract" if compat else None)
    where = "at a position (FIRST/AFTER)" if positioned else ""
    result = _rebuild("mysql.add-column-rebuild", f"ADD COLUMN {where} on {v}".replace("  ", " "))
    result.compatibility = compat
    result.reasons.extend(extra)
    return result


def _varchar_change(old: ColumnInfo, new: ColumnInfo, v: ServerVersion) -> Assessment | None:
    if not old.params or not new.params or not all(
            isinstance(x, int) for x in (old.params[0], new.params[0])):
        return None
    old_len, new_len = old.params[0], new.params[0]
    if new_len < old_len:
        result = _copy("mysql.narrow-column", f"{old.render()} → {new.render()} narrows the column")
        result.compatibility = True
        result.reasons.append("narrowing: values the running release writes may no longer fit")
        return result
    if new_len == old_len:
        return None
    width = new.charset_bytes or old.charset_bytes or _DEFAULT_CHARSET_BYTES
    old_bytes, new_bytes = old_len * width, new_len * width
    if v.flavour == "mariadb":
        in_place = old_bytes <= 127 or new_bytes <= 255 or old_bytes > 255
    else:
        in_place = (old_bytes <= 255) == (new_bytes <= 255)
    if in_place:
        return _a("mysql.extend-varchar", "instant" if v.flavour == "mariadb" else "nocopy",
                  f"extending {old.render()} → {new.render()} keeps the length prefix size "
                  f"({old_bytes} → {new_bytes} bytes): metadata only")
    return _copy("mysql.extend-varchar-copy", f"extending {old.render()} → {new.render()} "
                 f"crosses 255 bytes ({old_bytes} → {new_bytes} bytes)")


def _type_change(old: ColumnInfo, new: ColumnInfo, v: ServerVersion) -> Assessment | None:
    """None when type and parameters are unchanged."""
    if old.type == new.type and tuple(old.params) == tuple(new.params):
        return None
    if old.type == new.type and old.type in ("varchar", "char", "varbinary", "binary"):
        return _varchar_change(old, new, v)
    if old.type == new.type and old.type in ("enum", "set"):
        old_members, new_members = tuple(old.params), tuple(new.params)
        if new_members[:len(old_members)] == old_members:
            return _instant("mysql.enum-append", f"appending members to {old.type.upper()}")
        result = _copy("mysql.enum-reorder", "inserting, removing or reordering "
                       f"{old.type.upper()} members")
        if set(old_members) - set(new_members):
            result.compatibility = True
            result.reasons.append("members removed: the running release may still write them")
        return result
    result = _copy("mysql.change-column-type", f"changing the type {old.render()} → "
                   f"{new.render()}")
    narrowing = (_INT_RANK.get(old.type, 0) > _INT_RANK.get(new.type, 99)) or (
        old.type == new.type and old.params and new.params and all(
            isinstance(a, int) and isinstance(b, int) for a, b in zip(old.params, new.params))
        and any(b < a for a, b in zip(old.params, new.params)))
    if narrowing:
        result.compatibility = True
        result.reasons.append("narrowing: values the running release writes may no longer fit")
    return result


def _modify_column(op: Operation, ctx: SchemaContext, v: ServerVersion) -> Assessment:
    new: ColumnInfo = op.get("column")
    old_name = op.get("rename_from") or new.name
    renamed = old_name.lower() != new.name.lower()
    old = ctx.column(op.table, old_name)
    parts: list[Assessment] = []
    if renamed:
        parts.append(_a("mysql.rename-column", "instant", f"CHANGE {old_name} {new.name} renames "
                        "the column: the running release still uses the old name",
                        compat=True, alt="expand-contract"))
    if old is None:
        parts.append(_a("mysql.modify-column-unknown", "copy",
                        f"may copy the table (old definition of {op.table}.{old_name} "
                        "unknown: no database URL, no columns entry, not created in this "
                        "change): a type or nullability change copies it with writes blocked, "
                        "a default or comment change is instant", size=True, blocks=True,
                        alt="osc"))
    else:
        change = _type_change(old, new, v)
        if change is not None:
            parts.append(change)
        if old.nullable != new.nullable:
            if new.nullable:
                parts.append(_rebuild("mysql.make-column-null",
                                      f"{old_name} becomes NULL-able (MODIFY restates the "
                                      "column; leaving out NOT NULL makes it nullable)"))
            else:
                result = _rebuild("mysql.make-column-not-null", f"{old_name} becomes NOT NULL "
                                  "(fails if any row holds NULL)")
                if not new.has_default:
                    result.compatibility = True
                    result.reasons.append("NOT NULL without DEFAULT: the running release may "
                                          "still insert rows without this column")
                parts.append(result)
    if op.get("auto_increment") and not (old is not None and old.auto_increment):
        parts.append(_copy("mysql.modify-column-auto-increment", f"making {new.name} "
                           "AUTO_INCREMENT (every row is checked and numbered)"))
    if op.get("position") in ("FIRST", "AFTER"):
        if v.flavour == "mariadb" and v.at_least(10, 4):
            parts.append(_instant("mysql.reorder-column", "reordering a column on MariaDB 10.4+"))
        else:
            parts.append(_rebuild("mysql.reorder-column", "reordering columns (FIRST/AFTER)"))
    if not parts:
        return _instant("mysql.modify-column-same", "the column definition keeps its type, "
                        "length and nullability (default or comment only)")
    return merge(parts)


def merge(parts: list[Assessment]) -> Assessment:
    """One assessment for several facts about one operation: the heaviest effect wins."""
    worst = max(parts, key=lambda a: (LEVEL.get(a.effect, 0), a.size_dependent))
    result = Assessment(worst.rule, worst.effect, alternative_kind=worst.alternative_kind)
    for part in parts:
        result.size_dependent |= part.size_dependent
        result.compatibility |= part.compatibility
        result.fails |= part.fails
        result.blocks_writes |= part.blocks_writes
        result.reasons.extend(part.reasons)
        if part.compatibility and not result.alternative_kind:
            result.alternative_kind = "expand-contract"
    return result


def assess_mysql(op: Operation, parsed: ParsedStatement, ctx: SchemaContext,
                 v: ServerVersion) -> Assessment:
    """The rule for one MySQL/MariaDB operation (statement-wide clauses come after)."""
    k = op.kind
    mariadb = v.flavour == "mariadb"
    if k == "add_column":
        return _add_column(op, v)
    if k == "drop_column":
        instant = v.at_least(10, 4) if mariadb else v.at_least(8, 0, 29)
        what = f"DROP COLUMN {op.get('column')}"
        result = _instant("mysql.drop-column", what) if instant else _rebuild(
            "mysql.drop-column", what)
        result.compatibility = True
        result.alternative_kind = "expand-contract"
        result.reasons.append("the release still running during the canary reads or writes "
                              "this column: drop it in a later deploy, after no code uses it")
        return result
    if k == "rename_column":
        instant = mariadb or v.at_least(8, 0, 28)
        return _a("mysql.rename-column", "instant" if instant else "nocopy",
                  f"RENAME COLUMN {op.get('old')} TO {op.get('new')}: metadata only, but the "
                  "release still running uses the old name", compat=True, alt="expand-contract")
    if k == "modify_column":
        return _modify_column(op, ctx, v)
    if k == "set_default":
        return _instant("mysql.set-default", "SET DEFAULT")
    if k == "drop_default":
        return _a("mysql.drop-default", "instant", "DROP DEFAULT: metadata only, but the "
                  "running release may rely on the default when it inserts", compat=True,
                  alt="expand-contract")
    if k == "add_index":
        kind = op.get("index_kind", "plain")
        if kind == "fulltext":
            return _a("mysql.add-fulltext-index", "rebuild", "ADD FULLTEXT INDEX: in place but "
                      "without concurrent DML (the first FULLTEXT index rebuilds the table): "
                      "writes blocked for the build", size=True, blocks=True, alt="osc")
        if kind == "spatial":
            return _a("mysql.add-spatial-index", "nocopy", "ADD SPATIAL INDEX: in place "
                      "without concurrent DML: writes blocked for the build", size=True,
                      blocks=True, alt="osc")
        unique = " (fails on duplicates)" if kind == "unique" else ""
        return _a("mysql.add-index", "nocopy", f"ADD INDEX{unique}: in place with concurrent "
                  "DML, but it reads the whole table (time ∝ size), replicas lag by the build "
                  "time, and a brief exclusive lock at the end applies the online log",
                  size=True, alt="osc")
    if k in ("drop_index", "drop_foreign_key", "drop_constraint"):
        what = {"drop_index": "DROP INDEX", "drop_foreign_key": "DROP FOREIGN KEY",
                "drop_constraint": "DROP CONSTRAINT/CHECK"}[k]
        return _a(f"mysql.{k.replace('_', '-')}", "nocopy", f"{what}: in place, metadata only")
    if k == "rename_index":
        return _instant("mysql.rename-index", "RENAME INDEX")
    if k == "add_primary_key":
        return _rebuild("mysql.add-primary-key", "ADD PRIMARY KEY")
    if k == "drop_primary_key":
        if any(o.kind == "add_primary_key" for o in parsed.operations):
            return _rebuild("mysql.replace-primary-key", "DROP PRIMARY KEY, ADD PRIMARY KEY")
        return _copy("mysql.drop-primary-key", "DROP PRIMARY KEY without adding another")
    if k == "add_foreign_key":
        if ctx.session_value("foreign_key_checks") in ("0", "off", "false"):
            return _a("mysql.add-foreign-key", "nocopy", "ADD FOREIGN KEY with "
                      "foreign_key_checks=0: in place, existing rows not checked")
        result = _copy("mysql.add-foreign-key", "ADD FOREIGN KEY (foreign_key_checks=1)")
        return result
    if k == "add_check":
        return _copy("mysql.add-check", "ADD CHECK: every row is checked")
    if k == "table_encryption":
        if mariadb:
            return _a("mysql.table-encryption", "copy", f"{op.get('what')}: MariaDB has no "
                      "ENCRYPTION table option (it uses ENCRYPTED=YES with a key management "
                      "plugin): the server refuses the statement", fails=True, blocks=True,
                  alt="mariadb-encryption")
        return _copy("mysql.table-encryption", f"{op.get('what')} (changing table encryption)")
    if k == "convert_charset":
        return _copy("mysql.convert-charset", "CONVERT TO CHARACTER SET")
    if k == "rebuild_table":
        return _rebuild("mysql.rebuild-table", op.get("what") or "table rebuild")
    if k == "partition":
        verb = op.get("verb")
        if verb == "add":
            return _a("mysql.add-partition", "nocopy", "ADD PARTITION (RANGE/LIST): creates an "
                      "empty partition")
        if verb in ("drop", "truncate"):
            return _a("mysql.drop-partition", "nocopy", f"{verb.upper()} PARTITION deletes the "
                      "partition's rows", compat=True, alt="expand-contract")
        if verb in ("analyze", "check", "repair", "discard", "import"):
            return _a("mysql.partition-maintenance", "none", f"{verb.upper()} PARTITION")
        return _copy("mysql.repartition", f"{op.get('what') or 'repartitioning'} rebuilds "
                     "every affected partition")
    if k == "rename_table":
        return _a("mysql.rename-table", "instant", f"RENAME TABLE {op.table} → {op.get('new')}: "
                  "the release still running uses the old name", compat=True,
                  alt="expand-contract")
    if k in ("drop_table", "truncate_table", "drop_database"):
        what = {"drop_table": "DROP TABLE", "truncate_table": "TRUNCATE",
                "drop_database": "DROP DATABASE"}[k]
        return _a(f"mysql.{k.replace('_', '-')}", "instant", f"{what} deletes data the running "
                  "release may still read or write", compat=True, alt="expand-contract")
    if k == "create_table":
        sources = op.get("as_select_from") or []
        if sources:
            return _a("mysql.create-table-as-select", "copy", "CREATE TABLE … AS SELECT locks "
                      f"every row it reads from {', '.join(sources)} (REPEATABLE READ)",
                      size=True, blocks=True, alt="batched-dml")
        return _a("mysql.create-table", "none", "a new table: nothing existing is locked")
    if k in ("dml_update", "dml_delete"):
        if op.get("has_where") or op.get("has_limit"):
            return _a("mysql.dml", "none", "data change limited by WHERE/LIMIT")
        return _a("mysql.dml-whole-table", "none", f"{k[4:].upper()} without WHERE touches every "
                  "row in one transaction: row locks and replica lag ∝ table size", size=True,
                  alt="batched-dml")
    if k == "lock_tables":
        return _a("mysql.lock-tables", "none", f"LOCK TABLES … {op.get('mode', '').upper()} "
                  "blocks other sessions until UNLOCK TABLES", size=op.get("mode") == "write",
                  blocks=True)
    if k in ("metadata",):
        return _instant("mysql.table-metadata", op.get("what") or "metadata change")
    if k in ("set_session", "transaction", "other"):
        return _a("mysql.no-schema-change", "none", "no schema change")
    return _a("mysql.unknown-operation", "copy", f"operation {k} has no rule", size=True)


def apply_statement_clauses(parsed: ParsedStatement, results: list[Assessment],
                            ctx: SchemaContext, v: ServerVersion) -> None:
    """Statement-wide facts: mixing instant with non-instant actions, and explicit (or session)
    ALGORITHM / LOCK requests which the server refuses rather than silently weakening."""
    ddl = [(op, a) for op, a in zip(parsed.operations, results) if LEVEL.get(a.effect, -1) >= 0]
    if not ddl:
        return
    heaviest = max(LEVEL[a.effect] for _, a in ddl)
    if heaviest > LEVEL["instant"]:
        heavy_name = next(op.kind for op, a in ddl if LEVEL[a.effect] == heaviest)
        for op, a in ddl:
            if a.effect == "instant" and op.kind in ("add_column", "drop_column",
                                                     "modify_column"):
                a.effect = "rebuild"
                a.size_dependent = True
                a.alternative_kind = a.alternative_kind or "osc"
                a.reasons.append(f"combined in one ALTER with {heavy_name} (not instant), this "
                                 "change is no longer instant: the table is rebuilt")
    algorithm = parsed.algorithm or (
        (ctx.session_value("alter_algorithm") or "").upper() if v.flavour == "mariadb" else "")
    algorithm = algorithm if algorithm not in ("", "DEFAULT") else None
    levels = [LEVEL[a.effect] for _, a in ddl]
    heaviest = max(levels)
    if algorithm in ("INSTANT", "NOCOPY", "INPLACE"):
        limit = {"INSTANT": 0, "NOCOPY": 1, "INPLACE": 2}[algorithm]
        if algorithm == "INPLACE" and v.flavour == "mysql":
            for op, a in ddl:
                if a.effect == "instant" and op.kind == "add_column":
                    a.effect = "rebuild"
                    a.size_dependent = True
                    a.alternative_kind = "osc"
                    a.reasons.append("ALGORITHM=INPLACE forces MySQL to rebuild the table for "
                                     "ADD COLUMN (leave ALGORITHM out or use INSTANT)")
        if heaviest > limit:
            for op, a in ddl:
                if LEVEL[a.effect] > limit:
                    a.fails = True
                    a.rule = "mysql.algorithm-unsupported"
                    a.alternative_kind = "algorithm"
                    a.reasons.append(f"ALGORITHM={algorithm} is not supported for this change "
                                     f"(it needs {a.effect.upper()}): the server refuses the "
                                     "statement and the migration fails")
    elif algorithm == "COPY":
        for _, a in ddl:
            if a.effect != "copy":
                a.effect = "copy"
                a.size_dependent = True
                a.blocks_writes = True
                a.alternative_kind = "osc"
                a.reasons.append("ALGORITHM=COPY forces a full table copy with writes blocked")
    lock = (parsed.lock or "").upper()
    if lock == "NONE":
        for _, a in ddl:
            if a.blocks_writes:
                a.fails = True
                a.rule = "mysql.lock-none-unsupported"
                a.alternative_kind = "algorithm"
                a.reasons.append("LOCK=NONE is not possible for this change (it cannot allow "
                                 "concurrent writes): the server refuses the statement")
            elif a.size_dependent:
                a.reasons.append("LOCK=NONE does not make the work smaller: the whole table is "
                                 "still read or rebuilt")
    elif lock in ("SHARED", "EXCLUSIVE"):
        for _, a in ddl:
            if a.effect != "instant":
                a.blocks_writes = True
                a.size_dependent = True
                a.alternative_kind = a.alternative_kind or "osc"
                blocked = "writes" if lock == "SHARED" else "reads and writes"
                a.reasons.append(f"LOCK={lock} blocks {blocked} for the whole operation")
