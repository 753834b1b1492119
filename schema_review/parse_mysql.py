"""MySQL / MariaDB statements to operations, with sqlglot first and keywords second.

sqlglot structures most ALTER TABLE actions but returns an opaque ``Command`` (or raises) for
RENAME TABLE, CONVERT TO CHARACTER SET, OPTIMIZE, ADD CHECK, partition clauses and CREATE INDEX
with ALGORITHM/LOCK.  For those we split the ALTER into its actions and re-parse each alone,
classifying what sqlglot still cannot read by its leading keywords; only a statement nothing
recognises becomes ``unparsed``.
"""
from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp

from schema_review.dynamic import mysql_procedure, routine_name
from schema_review.model import ColumnInfo, Operation, ParsedStatement
from schema_review.split import split_top_level

logging.getLogger("sqlglot").setLevel(logging.CRITICAL)

_CHARSET_BYTES = {"latin1": 1, "ascii": 1, "binary": 1, "utf8": 3, "utf8mb3": 3, "utf8mb4": 4,
                  "ucs2": 2, "utf16": 4, "utf32": 4}

_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint", "utinyint", "usmallint",
              "umediumint", "uint", "ubigint"}
# Leading words of statements with no schema risk (after the structured checks below).
_HARMLESS = {
    "select", "insert", "replace", "set", "use", "show", "start", "begin", "commit", "rollback",
    "savepoint", "release", "grant", "revoke", "flush", "analyze", "check", "call", "do",
    "prepare", "execute", "deallocate", "unlock", "describe", "explain", "checksum", "help",
    "signal", "resignal", "xa", "install", "uninstall", "handler", "load", "with", "values",
}
_CREATE_HARMLESS = {"database", "schema", "view", "trigger", "procedure", "function", "event",
                    "user", "role", "sequence", "definer", "algorithm", "sql", "server",
                    "tablespace", "logfile", "aggregate", "temporary", "spatial"}
_DROP_HARMLESS = {"trigger", "procedure", "function", "event", "user", "role", "server",
                  "temporary"}


def _words(sql: str, count: int = 4) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z_]+", sql[:400])[:count]]


def _ident(node: exp.Expression | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, exp.Table):
        return node.name
    return getattr(node, "name", None) or str(node)


def column_from_def(node: exp.ColumnDef) -> ColumnInfo:
    """A ColumnInfo from sqlglot's ColumnDef (type, length/members, NULL, DEFAULT, charset)."""
    kind = node.args.get("kind")
    type_name = kind.this.name.lower() if isinstance(kind, exp.DataType) else "unknown"
    params: list = []
    if isinstance(kind, exp.DataType):
        for param in kind.expressions:
            value = param.this if isinstance(param, exp.DataTypeParam) else param
            if isinstance(value, exp.Literal):
                params.append(value.this if value.is_string else _number(value.this))
            else:
                params.append(value.sql("mysql"))
    if type_name in _INT_TYPES:
        params = []  # INT(11): the display width changes nothing stored
    info = ColumnInfo(node.name, type_name, tuple(params))
    for constraint in node.args.get("constraints") or []:
        ckind = constraint.args.get("kind")
        if isinstance(ckind, exp.NotNullColumnConstraint):
            info.nullable = bool(ckind.args.get("allow_null"))
        elif isinstance(ckind, exp.PrimaryKeyColumnConstraint):
            info.nullable = False
        elif isinstance(ckind, exp.DefaultColumnConstraint):
            info.has_default = True
        elif isinstance(ckind, exp.CharacterSetColumnConstraint):
            info.charset_bytes = _CHARSET_BYTES.get(ckind.this.name.lower())
        elif isinstance(ckind, exp.AutoIncrementColumnConstraint):
            info.auto_increment = True
    return info


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _column_attrs(node: exp.ColumnDef) -> dict:
    """Everything a rule needs about an added or restated column."""
    attrs: dict = {"column": column_from_def(node)}
    position = node.args.get("position")
    if position is not None:
        attrs["position"] = str(position.args.get("position") or "").upper() or "AFTER"
    for constraint in node.args.get("constraints") or []:
        ckind = constraint.args.get("kind")
        if isinstance(ckind, exp.AutoIncrementColumnConstraint):
            attrs["auto_increment"] = True
        elif isinstance(ckind, exp.ComputedColumnConstraint):
            attrs["generated"] = "stored" if ckind.args.get("persisted") else "virtual"
        elif isinstance(ckind, exp.DefaultColumnConstraint):
            value = ckind.this
            if isinstance(value, exp.Paren) or (
                    isinstance(value, exp.Func) and not isinstance(
                        value, (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime))):
                attrs["expression_default"] = value.sql("mysql")
        elif isinstance(ckind, (exp.PrimaryKeyColumnConstraint,)):
            attrs["inline_index"] = "primary"
        elif isinstance(ckind, exp.UniqueColumnConstraint):
            attrs["inline_index"] = "unique"
        elif isinstance(ckind, exp.CheckColumnConstraint):
            attrs["inline_check"] = True
    return attrs


def _constraint_ops(table: str, node: exp.Expression) -> list[Operation]:
    ops = []
    for item in node.expressions:
        name = None
        inner = [item]
        if isinstance(item, exp.Constraint):
            name = item.name
            inner = list(item.expressions)
        for part in inner:
            if isinstance(part, exp.IndexColumnConstraint):
                kind = str(part.args.get("kind") or "").lower() or "plain"
                cols = [c.name for c in part.expressions]
                ops.append(Operation("add_index", table, {
                    "index_kind": kind, "name": _ident(part.this) or name, "columns": cols}))
            elif isinstance(part, exp.UniqueColumnConstraint):
                schema = part.this
                cols = [c.name for c in schema.expressions] if schema is not None else []
                ops.append(Operation("add_index", table, {
                    "index_kind": "unique", "name": _ident(getattr(schema, "this", None)) or name,
                    "columns": cols}))
            elif isinstance(part, exp.PrimaryKey):
                ops.append(Operation("add_primary_key", table,
                                     {"columns": [c.name for c in part.expressions]}))
            elif isinstance(part, exp.ForeignKey):
                ref = part.args.get("reference")
                ref_table = None
                if ref is not None and isinstance(ref.this, exp.Schema):
                    ref_table = _ident(ref.this.this)
                ops.append(Operation("add_foreign_key", table,
                                     {"name": name, "references": ref_table}))
            elif isinstance(part, exp.CheckColumnConstraint):
                ops.append(Operation("add_check", table, {"name": name}))
            else:
                ops.append(Operation("unparsed", table, {
                    "reason": f"constraint {part.sql('mysql')[:80]!r} is not understood"}))
    return ops


def _alter_ops(node: exp.Alter) -> tuple[list[Operation], str | None, str | None]:
    table = _ident(node.this)
    ops: list[Operation] = []
    algorithm = lock = None
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            ops.append(Operation("add_column", table, _column_attrs(action)))
        elif isinstance(action, exp.ModifyColumn):
            attrs = _column_attrs(action.this)
            rename_from = action.args.get("rename_from")
            if rename_from is not None:
                attrs["rename_from"] = rename_from.name
            ops.append(Operation("modify_column", table, attrs))
        elif isinstance(action, exp.RenameColumn):
            ops.append(Operation("rename_column", table, {
                "old": action.this.name, "new": action.args["to"].name}))
        elif isinstance(action, exp.AlterColumn):
            if action.args.get("drop"):
                ops.append(Operation("drop_default", table, {"column": action.name}))
            elif action.args.get("default") is not None:
                ops.append(Operation("set_default", table, {"column": action.name}))
            else:
                ops.append(Operation("metadata", table, {"what": action.sql("mysql")[:80]}))
        elif isinstance(action, exp.Drop):
            kind = str(action.args.get("kind") or "").upper()
            names = [_ident(t) for t in action.args.get("tables") or []]
            target = names[0] if names else None
            mapping = {"COLUMN": "drop_column", "INDEX": "drop_index", "KEY": "drop_index",
                       "FOREIGN KEY": "drop_foreign_key", "CHECK": "drop_constraint",
                       "CONSTRAINT": "drop_constraint"}
            op_kind = mapping.get(kind)
            if op_kind is None:
                ops.append(Operation("unparsed", table, {"reason": f"DROP {kind} not understood"}))
            else:
                ops.append(Operation(op_kind, table, {"column" if kind == "COLUMN" else "name":
                                                      target}))
        elif isinstance(action, exp.DropPrimaryKey):
            ops.append(Operation("drop_primary_key", table))
        elif isinstance(action, exp.AddConstraint):
            ops.extend(_constraint_ops(table, action))
        elif isinstance(action, exp.RenameIndex):
            ops.append(Operation("rename_index", table))
        elif isinstance(action, exp.AlterIndex):
            ops.append(Operation("metadata", table, {"what": "index visibility"}))
        elif isinstance(action, exp.AlterRename):
            ops.append(Operation("rename_table", table, {"new": _ident(action.this)}))
        elif isinstance(action, exp.ForceProperty):
            ops.append(Operation("rebuild_table", table, {"what": "FORCE"}))
        else:
            ops.append(Operation("unparsed", table, {
                "reason": f"ALTER action {action.sql('mysql')[:80]!r} is not understood"}))
    for option in node.args.get("options") or []:
        name = type(option).__name__
        value = option.this.name.upper() if isinstance(option.this, exp.Expression) else ""
        if name == "AlgorithmProperty":
            algorithm = value
        elif name == "LockProperty":
            lock = value
        elif name in ("RowFormatProperty", "EngineProperty") or (
                name == "Property" and option.name.upper() == "KEY_BLOCK_SIZE"):
            label = {"RowFormatProperty": "ROW_FORMAT", "EngineProperty": "ENGINE"}.get(
                name, "KEY_BLOCK_SIZE")
            ops.append(Operation("rebuild_table", table, {"what": f"{label}={value or ''}"}))
        elif option.sql("mysql").upper().startswith("ENCRYPTION"):
            ops.append(Operation("table_encryption", table, {"what": option.sql("mysql")[:80]}))
        else:
            ops.append(Operation("metadata", table, {"what": option.sql("mysql")[:80]}))
    return ops, algorithm, lock


_ALTER_HEAD = re.compile(r"^\s*alter\s+(?:online\s+|ignore\s+)*table\s+((?:`[^`]*`|[\w$.]+)"
                         r"(?:\s*\.\s*(?:`[^`]*`|[\w$]+))?)\s*", re.IGNORECASE)
_OPTION = re.compile(r"^(algorithm|lock)\s*=?\s*(\w+)$", re.IGNORECASE)
_PARTITION = re.compile(
    r"^(add|drop|discard|import|truncate|coalesce|reorganize|exchange|analyze|check|optimize|"
    r"rebuild|repair|remove)\s+partition(?:ing)?\b|^partition\s+by\b", re.IGNORECASE)


def _unquote(name: str) -> str:
    name = name.split(".")[-1].strip()
    return name.strip("`")


def _keyword_action(table: str, action: str) -> tuple[list[Operation], str | None, str | None]:
    """One ALTER action sqlglot could not structure: re-parse it alone, then read keywords."""
    option = _OPTION.match(action)
    if option:
        key, value = option.group(1).lower(), option.group(2).upper()
        return [], value if key == "algorithm" else None, value if key == "lock" else None
    low = " ".join(action.lower().split())
    if low.startswith(("convert to character set", "convert to charset")):
        return [Operation("convert_charset", table, {"what": action[:80]})], None, None
    partition = _PARTITION.match(low)
    if partition:
        verb = (partition.group(1) or "by").lower()
        return [Operation("partition", table, {"verb": verb, "what": action[:80]})], None, None
    if re.match(r"^add\s+(constraint\s+(`[^`]*`|\w+)\s+)?check\b", low):
        return [Operation("add_check", table)], None, None
    if re.match(r"^(default\s+)?(character\s+set|charset|collate)\b", low):
        return [Operation("metadata", table, {"what": action[:80]})], None, None
    if re.match(r"^add\s+column\s*\(", low):  # ADD COLUMN (a int, b int)
        inner = action[action.index("(") + 1: action.rindex(")")] if ")" in action else ""
        ops: list[Operation] = []
        for part in split_top_level(inner):
            sub, _, _ = _keyword_action(table, f"ADD COLUMN {part}")
            ops.extend(sub)
        return ops, None, None
    try:
        node = sqlglot.parse_one(f"ALTER TABLE `{table}` {action}", read="mysql")
    except Exception:  # noqa: BLE001 - sqlglot raises many types; all mean "not structured"
        node = None
    if isinstance(node, exp.Alter):
        return _alter_ops(node)
    return [Operation("unparsed", table, {
        "reason": f"ALTER action {action[:80]!r} is not understood"})], None, None


def _keyword_alter(sql: str) -> ParsedStatement | None:
    head = _ALTER_HEAD.match(sql)
    if not head:
        return None
    table = _unquote(head.group(1))
    ops: list[Operation] = []
    algorithm = lock = None
    for action in split_top_level(sql[head.end():]):
        # ALGORITHM=x and LOCK=y may follow an action without a comma in MariaDB dumps
        tail = re.search(r"\s+(algorithm|lock)\s*=\s*(\w+)\s*$", action, re.IGNORECASE)
        while tail and not _OPTION.match(action):
            key, value = tail.group(1).lower(), tail.group(2).upper()
            if key == "algorithm":
                algorithm = value
            else:
                lock = value
            action = action[:tail.start()].strip()
            tail = re.search(r"\s+(algorithm|lock)\s*=\s*(\w+)\s*$", action, re.IGNORECASE)
        sub, alg, lk = _keyword_action(table, action)
        ops.extend(sub)
        algorithm = alg or algorithm
        lock = lk or lock
    if not ops:
        ops.append(Operation("metadata", table, {"what": "no action"}))
    return ParsedStatement(ops, algorithm, lock, parser="keywords")


_CREATE_INDEX = re.compile(
    r"^\s*create\s+(?:(unique|fulltext|spatial)\s+)?index\s+(`[^`]*`|[\w$]+)\s+"
    r"(?:using\s+\w+\s+)?on\s+(`[^`]*`|[\w$.`]+)", re.IGNORECASE)


def _keyword_statement(sql: str) -> ParsedStatement | None:
    """Statements classified by their leading keywords (sqlglot leaves them opaque)."""
    words = _words(sql)
    if not words:
        return None
    first = words[0]
    if first == "alter" and len(words) > 1 and words[1] in ("table", "online", "ignore"):
        return _keyword_alter(sql)
    if first == "rename" and len(words) > 1 and words[1] in ("table", "tables"):
        body = re.sub(r"^\s*rename\s+tables?\s+", "", sql, flags=re.IGNORECASE)
        ops = []
        for pair in split_top_level(body):
            match = re.match(r"(\S+)\s+to\s+(\S+)", pair, re.IGNORECASE)
            if match:
                ops.append(Operation("rename_table", _unquote(match.group(1)),
                                     {"new": _unquote(match.group(2))}))
        return ParsedStatement(ops or [Operation("unparsed", None, {
            "reason": "RENAME TABLE without 'a TO b'"})], parser="keywords")
    if first == "optimize":
        body = re.sub(r"^\s*optimize\s+(no_write_to_binlog\s+|local\s+)?tables?\s+", "", sql,
                      flags=re.IGNORECASE)
        ops = [Operation("rebuild_table", _unquote(t), {"what": "OPTIMIZE TABLE"})
               for t in split_top_level(body)]
        return ParsedStatement(ops, parser="keywords")
    index = _CREATE_INDEX.match(sql)
    if index:
        algorithm = re.search(r"\balgorithm\s*=?\s*(\w+)", sql[index.end():], re.IGNORECASE)
        lock = re.search(r"\block\s*=?\s*(\w+)", sql[index.end():], re.IGNORECASE)
        kind = (index.group(1) or "plain").lower()
        op = Operation("add_index", _unquote(index.group(3)),
                       {"index_kind": kind, "name": _unquote(index.group(2))})
        return ParsedStatement([op], algorithm.group(1).upper() if algorithm else None,
                               lock.group(1).upper() if lock else None, parser="keywords")
    if first == "create" and words[1:3] == ["or", "replace"] and len(words) > 3:
        words = ["create"] + words[3:]
    if first == "create" and len(words) > 1 and words[1] in _CREATE_HARMLESS:
        return ParsedStatement([Operation("other", None, {"what": f"CREATE {words[1].upper()}"})],
                               parser="keywords")
    if first == "drop" and len(words) > 1 and words[1] in _DROP_HARMLESS | {"view"}:
        return ParsedStatement([Operation("other", None, {"what": f"DROP {words[1].upper()}"})],
                               parser="keywords")
    if first == "lock" and len(words) > 1 and words[1] in ("tables", "table"):
        tables = re.findall(r"(`[^`]*`|[\w$.]+)\s+(?:as\s+\w+\s+)?(write|read)", sql[11:],
                            re.IGNORECASE)
        ops = [Operation("lock_tables", _unquote(t), {"mode": m.lower()}) for t, m in tables]
        return ParsedStatement(ops or [Operation("other", None, {"what": "LOCK TABLES"})],
                               parser="keywords")
    if first in _HARMLESS:
        return ParsedStatement([Operation("other", None, {"what": first.upper()})],
                               parser="keywords")
    return None


def _session_ops(node: exp.Set) -> list[Operation]:
    ops = []
    for item in node.expressions:
        eq = item.this
        if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Parameter):
            # a user variable (@s): its value may become a prepared statement's text
            ops.append(Operation("set_variable", None, {"name": f"@{eq.this.name}".lower(),
                                                        "expr": eq.expression}))
        elif isinstance(eq, exp.EQ):
            name = eq.this.sql("mysql").lower().replace("@@", "").replace("session.", "")
            name = name.replace("`", "").strip()
            ops.append(Operation("set_session", None, {
                "name": name, "value": eq.expression.sql("mysql").strip("'\"").lower()}))
    return ops or [Operation("other", None, {"what": "SET"})]


# Statements sqlglot only returns as an opaque Command: go to the keyword rules directly.
_KEYWORDS_FIRST = re.compile(
    r"^\s*(rename\s+tables?\b|optimize\b|alter\s+(online|ignore)\b|create\s+(unique\s+|"
    r"fulltext\s+|spatial\s+)?index\b[^;]*\b(algorithm|lock)\b|alter\s+table\b[^;]*\b(convert"
    r"\s+to|add\s+(constraint\s+\S+\s+)?check|partition)\b)", re.IGNORECASE | re.DOTALL)
# Statements with no schema effect whose first word says so: no need to build a tree.
_PLAIN_DML = re.compile(r"^\s*(select|insert|replace|show|use|grant|revoke|call|analyze|"
                        r"with|values|flush|create\s+(definer|trigger|procedure|function|"
                        r"event|view))\b", re.IGNORECASE)


_PREPARE = re.compile(r"^\s*prepare\s+([\w$]+)\s+from\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_EXECUTE = re.compile(r"^\s*execute\s+([\w$]+)\b", re.IGNORECASE)
_CALL = re.compile(r"^\s*call\s+((?:`[^`]*`|[\w$]+)(?:\s*\.\s*(?:`[^`]*`|[\w$]+))?)",
                   re.IGNORECASE)
_DYNAMIC_FIRST = re.compile(r"^\s*(prepare|execute|call|create\b[^(]*\bprocedure)\b",
                            re.IGNORECASE)


def _dynamic_statement(sql: str) -> ParsedStatement | None:
    """PREPARE / EXECUTE / CALL / CREATE PROCEDURE: the review expands them later, with what
    earlier statements of the session set (dynamic.py)."""
    if not _DYNAMIC_FIRST.match(sql):
        return None
    prepare = _PREPARE.match(sql)
    if prepare:
        source = prepare.group(2).strip()
        attrs: dict = {"name": prepare.group(1).lower()}
        if source.startswith("@"):
            attrs["source"] = source.lower()
        else:
            try:
                attrs["expr"] = sqlglot.parse_one(f"SELECT {source}", read="mysql")
            except Exception:  # noqa: BLE001 - an expression we cannot read: text unknown
                attrs["expr"] = None
        return ParsedStatement([Operation("prepare", None, attrs)], parser="keywords")
    execute = _EXECUTE.match(sql)
    if execute:
        return ParsedStatement([Operation("execute", None, {"name": execute.group(1).lower()})],
                               parser="keywords")
    call = _CALL.match(sql)
    if call:
        return ParsedStatement([Operation("call", None, {
            "names": [routine_name(call.group(1))]})], parser="keywords")
    procedure = mysql_procedure(sql)
    if procedure and re.search(r"\bbegin\b", sql, re.IGNORECASE) and not re.search(
            r"\bend\s*[\w$]*\s*$", sql, re.IGNORECASE):
        return ParsedStatement([Operation("unparsed", None, {
            "reason": f"CREATE PROCEDURE {procedure[0]} has no END for its BEGIN: everything "
                      "after it in the file was read as its body and is not reviewed"})],
            parser="keywords")
    if procedure:
        name, body = procedure
        return ParsedStatement([Operation("define_routine", None, {"name": name,
                                                                    "body": body})],
                               parser="keywords")
    return None


def parse_mysql(sql: str) -> ParsedStatement:
    """Operations of one MySQL/MariaDB statement; never raises."""
    dynamic = _dynamic_statement(sql)
    if dynamic is not None:
        return dynamic
    if _PLAIN_DML.match(sql) or _KEYWORDS_FIRST.match(sql[:2000]):
        keyword = _keyword_statement(sql)
        if keyword is not None and not any(op.kind == "unparsed" for op in keyword.operations):
            return keyword
    try:
        node = sqlglot.parse_one(sql, read="mysql")
    except Exception:  # noqa: BLE001 - any parser failure falls back to keywords
        node = None
    if isinstance(node, exp.Alter) and str(node.args.get("kind") or "").upper() == "TABLE":
        ops, algorithm, lock = _alter_ops(node)
        if any(op.kind == "unparsed" for op in ops):
            fallback = _keyword_alter(sql)
            if fallback is not None:
                return fallback
        return ParsedStatement(ops, algorithm, lock, parser="sqlglot")
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind") or "").upper()
        if kind == "INDEX":
            index = node.this
            table = _ident(index.args.get("table"))
            cols = []
            params = index.args.get("params")
            if params is not None:
                cols = [c.this.name if isinstance(c, exp.Ordered) else c.name
                        for c in params.args.get("columns") or []]
            unique = bool(node.args.get("unique"))
            return ParsedStatement([Operation("add_index", table, {
                "index_kind": "unique" if unique else "plain", "name": index.name,
                "columns": cols})], parser="sqlglot")
        if kind == "TABLE":
            target = node.this.this if isinstance(node.this, exp.Schema) else node.this
            table = _ident(target)
            columns = {}
            if isinstance(node.this, exp.Schema):
                for col in node.this.expressions:
                    if isinstance(col, exp.ColumnDef):
                        columns[col.name.lower()] = column_from_def(col)
            query = node.args.get("expression")
            sources = []
            if isinstance(query, exp.Query):
                sources = [t.name for t in query.find_all(exp.Table)]
            ops = [Operation("create_table", table, {"columns": columns,
                                                     "as_select_from": sources})]
            if node.args.get("replace"):  # CREATE OR REPLACE TABLE drops the existing table
                ops.insert(0, Operation("drop_table", table))
            return ParsedStatement(ops, parser="sqlglot")
    if isinstance(node, exp.Drop):
        kind = str(node.args.get("kind") or "").upper()
        tables = [_ident(t) for t in node.args.get("tables") or []]
        if kind == "TABLE":
            return ParsedStatement([Operation("drop_table", t) for t in tables],
                                   parser="sqlglot")
        if kind == "INDEX":
            cluster = node.args.get("cluster")
            table = _ident(cluster.this) if cluster is not None else None
            return ParsedStatement([Operation("drop_index", table, {"name": tables[0]
                                                                    if tables else None})],
                                   parser="sqlglot")
        if kind in ("DATABASE", "SCHEMA"):
            return ParsedStatement([Operation("drop_database", None,
                                              {"name": tables[0] if tables else None})],
                                   parser="sqlglot")
    if isinstance(node, exp.TruncateTable):
        return ParsedStatement([Operation("truncate_table", _ident(t))
                                for t in node.expressions], parser="sqlglot")
    if isinstance(node, (exp.Update, exp.Delete)):
        return ParsedStatement([Operation("dml_" + type(node).__name__.lower(), _ident(node.this),
                                          {"has_where": node.args.get("where") is not None,
                                           "has_limit": node.args.get("limit") is not None})],
                               parser="sqlglot")
    if isinstance(node, exp.Set):
        return ParsedStatement(_session_ops(node), parser="sqlglot")
    if isinstance(node, exp.Transaction):
        return ParsedStatement([Operation("transaction", None, {"what": "begin"})],
                               parser="sqlglot")
    if isinstance(node, (exp.Commit, exp.Rollback)):
        return ParsedStatement([Operation("transaction", None, {"what": "end"})],
                               parser="sqlglot")
    keyword = _keyword_statement(sql)
    if keyword is not None:
        return keyword
    words = " ".join(_words(sql, 3)).upper() or sql[:30]
    return ParsedStatement([Operation("unparsed", None, {
        "reason": f"statement starting {words!r} is not understood by sqlglot or the "
                  "keyword rules"})], parser="none")
