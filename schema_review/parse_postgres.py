"""PostgreSQL statements to operations with pglast (PostgreSQL's own parser, libpg_query).

The parse tree is read as libpg_query's JSON (plain dicts) rather than pglast's Python node
objects: the rules only look at a few fields, and building those objects would cost more than
the rest of the review (``pg_query.py`` calls the parser without importing pglast's Python
side).  Every statement the rules care about is typed, including VALIDATE CONSTRAINT, USING
INDEX, ALTER TYPE ... ADD VALUE, ENABLE ROW LEVEL SECURITY and DO bodies, so nothing safe is
flagged as unparsed.  DO blocks and PL/pgSQL or SQL function bodies are read with
``parse_plpgsql``; a DO body is reviewed where it stands, a function's body where a ``CALL`` or
``SELECT f()`` of the same change runs it.
"""
from __future__ import annotations

from schema_review.model import ColumnInfo, Operation, ParsedStatement
from schema_review.pg_query import parse_plpgsql, parse_sql

# Functions whose value changes per row: a DEFAULT using them makes ADD COLUMN rewrite the table.
VOLATILE_FUNCTIONS = {"random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v1",
                      "uuid_generate_v4", "timeofday", "nextval", "txid_current", "setseed",
                      "uuidv4", "uuidv7", "uuid_generate_v1mc", "random_normal"}
# Stable or immutable functions commonly used in defaults: no rewrite.
STABLE_FUNCTIONS = {"now", "statement_timestamp", "transaction_timestamp", "current_setting",
                    "lower", "upper", "to_timestamp", "make_interval", "jsonb_build_object",
                    "json_build_object", "array", "coalesce", "concat", "length", "abs",
                    "date_trunc", "to_jsonb", "to_json", "current_database", "current_schema",
                    "current_user", "interval", "timezone", "format"}
_SERIAL = {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}
_TYPE_ALIASES = {"int4": "integer", "int8": "bigint", "int2": "smallint", "int": "integer",
                 "float8": "double precision", "float4": "real", "bool": "boolean",
                 "bpchar": "char", "character varying": "varchar", "character": "char",
                 "timestamp without time zone": "timestamp",
                 "timestamp with time zone": "timestamptz", "decimal": "numeric"}
_MAX_DEPTH = 3  # DO inside a function body inside ...: deeper nesting is not followed


def canonical_type(name: str) -> str:
    name = name.lower()
    return _TYPE_ALIASES.get(name, name)


def _node(value) -> tuple[str, dict]:
    """('ColumnDef', {...}) for {'ColumnDef': {...}}."""
    if isinstance(value, dict) and len(value) == 1:
        (name, body), = value.items()
        if isinstance(body, dict):
            return name, body
    return "", value if isinstance(value, dict) else {}


def _strings(items) -> list[str]:
    return [item["String"]["sval"] for item in items or () if "String" in item
            and "sval" in item["String"]]


def _relname(rangevar: dict | None) -> str | None:
    if not rangevar:
        return None
    if "RangeVar" in rangevar:
        rangevar = rangevar["RangeVar"]
    return rangevar.get("relname")


def _type_info(type_name: dict | None) -> tuple[str, tuple]:
    if not type_name:
        return "unknown", ()
    names = _strings(type_name.get("names"))
    base = canonical_type(names[-1] if names else "unknown")
    params: list = []
    for mod in type_name.get("typmods") or ():
        kind, body = _node(mod)
        if kind == "A_Const" and "ival" in body:
            params.append(body["ival"].get("ival", 0))
        else:
            params.append("?")
    if type_name.get("arrayBounds"):
        base += "[]"
    return base, tuple(params)


def _functions_in(tree) -> list[str]:
    """Names of every function called inside an expression tree."""
    found: list[str] = []
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            call = value.get("FuncCall")
            if isinstance(call, dict):
                names = _strings(call.get("funcname"))
                if names:
                    found.append(names[-1].lower())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def column_from_def(coldef: dict) -> tuple[ColumnInfo, dict]:
    """ColumnInfo plus the attributes ADD COLUMN rules need (default volatility, inline
    constraints, identity/serial/generated)."""
    base, params = _type_info(coldef.get("typeName"))
    info = ColumnInfo(coldef.get("colname") or "?", base, params,
                      nullable=not coldef.get("is_not_null"))
    attrs: dict = {"column": info}
    if base in _SERIAL:
        attrs["serial"] = True
        info.has_default = True
        info.nullable = False
    for item in coldef.get("constraints") or ():
        con = item.get("Constraint", {})
        contype = con.get("contype")
        if contype == "CONSTR_NOTNULL":
            info.nullable = False
        elif contype == "CONSTR_DEFAULT":
            info.has_default = True
            expr = con.get("raw_expr")
            funcs = _functions_in(expr)
            volatile = [f for f in funcs if f in VOLATILE_FUNCTIONS]
            unknown = [f for f in funcs if f not in VOLATILE_FUNCTIONS | STABLE_FUNCTIONS]
            if volatile:
                attrs["volatile_default"] = volatile[0]
            elif unknown:
                attrs["unknown_default_function"] = unknown[0]
            if not (_node(expr)[0] == "A_Const" and _node(expr)[1].get("isnull")):
                attrs["non_null_default"] = True
        elif contype == "CONSTR_IDENTITY":
            attrs["identity"] = True
            info.nullable = False
            info.has_default = True
        elif contype == "CONSTR_GENERATED":
            attrs["generated"] = True
        elif contype == "CONSTR_CHECK":
            attrs["inline_check"] = True
        elif contype == "CONSTR_FOREIGN":
            attrs["inline_fk"] = _relname(con.get("pktable")) or True
        elif contype in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            attrs["inline_index"] = "primary" if contype == "CONSTR_PRIMARY" else "unique"
            if contype == "CONSTR_PRIMARY":
                info.nullable = False
    return info, attrs


def _is_not_null_check(expr) -> str | None:
    """Column name if the CHECK expression is exactly ``col IS NOT NULL``."""
    kind, body = _node(expr)
    if kind == "NullTest" and body.get("nulltesttype") == "IS_NOT_NULL":
        ref_kind, ref = _node(body.get("arg"))
        if ref_kind == "ColumnRef":
            fields = _strings(ref.get("fields"))
            return fields[-1] if fields else None
    return None


def _constraint_op(table: str | None, con: dict) -> Operation:
    contype = con.get("contype", "")
    attrs: dict = {"name": con.get("conname"), "not_valid": bool(con.get("skip_validation"))}
    if contype == "CONSTR_CHECK":
        attrs["kind"] = "check"
        column = _is_not_null_check(con.get("raw_expr"))
        if column:
            attrs["not_null_column"] = column
    elif contype == "CONSTR_FOREIGN":
        attrs["kind"] = "foreign_key"
        attrs["references"] = _relname(con.get("pktable"))
    elif contype in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
        attrs["kind"] = "primary_key" if contype == "CONSTR_PRIMARY" else "unique"
        attrs["using_index"] = con.get("indexname")
        attrs["columns"] = _strings(con.get("keys"))
    elif contype == "CONSTR_EXCLUSION":
        attrs["kind"] = "exclusion"
    else:
        attrs["kind"] = contype.lower().replace("constr_", "")
    return Operation("add_constraint", table, attrs)


_SIMPLE_SUBTYPES = {
    "AT_DropNotNull": "drop_not_null", "AT_SetTableSpace": "set_tablespace",
    "AT_SetLogged": "set_logged", "AT_SetUnLogged": "set_logged",
    "AT_EnableRowSecurity": "enable_rls", "AT_ForceRowSecurity": "enable_rls",
    "AT_DropConstraint": "drop_constraint", "AT_ValidateConstraint": "validate_constraint",
    "AT_DropColumn": "drop_column", "AT_SetNotNull": "set_not_null",
}


def _alter_table_ops(stmt: dict) -> list[Operation]:
    table = _relname(stmt.get("relation"))
    objtype = stmt.get("objtype", "OBJECT_TABLE")
    if objtype != "OBJECT_TABLE":
        kind = objtype.replace("OBJECT_", "").lower()
        if kind == "index":
            return [Operation("metadata", table, {"what": "ALTER INDEX"})]
        return [Operation("other", table, {"what": f"ALTER {kind.upper()}"})]
    ops = []
    for item in stmt.get("cmds") or ():
        cmd = item.get("AlterTableCmd", {})
        subtype = cmd.get("subtype", "")
        definition = cmd.get("def")
        if subtype == "AT_AddColumn":
            _, attrs = column_from_def(_node(definition)[1])
            ops.append(Operation("add_column", table, attrs))
        elif subtype == "AT_AlterColumnType":
            coldef = _node(definition)[1]
            base, params = _type_info(coldef.get("typeName"))
            ops.append(Operation("alter_column_type", table, {
                "column": cmd.get("name"), "new_type": ColumnInfo(cmd.get("name"), base, params),
                "using": coldef.get("raw_default") is not None}))
        elif subtype == "AT_ColumnDefault":
            kind = "set_default" if definition is not None else "drop_default"
            ops.append(Operation(kind, table, {"column": cmd.get("name")}))
        elif subtype == "AT_AddConstraint":
            ops.append(_constraint_op(table, _node(definition)[1]))
        elif subtype in _SIMPLE_SUBTYPES:
            ops.append(Operation(_SIMPLE_SUBTYPES[subtype], table,
                                 {"column": cmd.get("name"), "name": cmd.get("name"),
                                  "what": subtype[3:]}))
        else:
            ops.append(Operation("metadata", table, {"what": subtype[3:]}))
    return ops


def _plpgsql_sql(sql: str) -> tuple[list[str], list[str]]:
    """(SQL statements, reasons the rest cannot be read) inside a DO block or a function
    definition.  ``EXECUTE 'constant'`` is read like a plain statement; any other EXECUTE
    builds its SQL at run time and is reported."""
    try:
        tree = parse_plpgsql(sql)
    except Exception as exc:  # noqa: BLE001 - a body PL/pgSQL cannot read
        return [], [f"PL/pgSQL body not readable: {str(exc).splitlines()[0][:120]}"]
    found: list[str] = []
    unknown: list[str] = []
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "PLpgSQL_stmt_execsql":
                    query = item.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
                    if query:
                        found.append(query)
                elif key == "PLpgSQL_stmt_perform":
                    query = item.get("expr", {}).get("PLpgSQL_expr", {}).get("query")
                    if query:
                        found.append(query)
                elif key == "PLpgSQL_stmt_dynexecute":
                    query = item.get("query", {}).get("PLpgSQL_expr", {}).get("query", "")
                    constant = _string_constant(query)
                    if constant is None:
                        unknown.append(f"EXECUTE {query[:80]} builds its SQL at run time")
                    else:
                        found.append(constant)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return found, unknown


def _string_constant(expression: str) -> str | None:
    """The value of a PL/pgSQL expression that is one string literal ('…' or $$…$$)."""
    try:
        stmts = parse_sql(f"SELECT {expression}")["stmts"]
        targets = stmts[0]["stmt"]["SelectStmt"]["targetList"]
        kind, body = _node(targets[0]["ResTarget"]["val"])
    except Exception:  # noqa: BLE001 - not a plain expression
        return None
    if len(targets) == 1 and kind == "A_Const" and "sval" in body:
        return body["sval"].get("sval", "")
    return None


def _routine(stmt: dict, sql: str) -> Operation:
    """CREATE FUNCTION / PROCEDURE: remember the body for a later CALL or SELECT f()."""
    names = _strings(stmt.get("funcname"))
    name = (names[-1] if names else "?").lower()
    language, body = "sql", None
    for item in stmt.get("options") or ():
        option = item.get("DefElem", {})
        if option.get("defname") == "language":
            language = _node(option.get("arg"))[1].get("sval", "sql").lower()
        elif option.get("defname") == "as":
            kind, arg = _node(option.get("arg"))
            items = arg.get("items") if kind == "List" else [option.get("arg")]
            strings = _strings(items)
            body = strings[0] if strings else None
    if language == "plpgsql":
        statements, unknown = _plpgsql_sql(sql)
    elif language == "sql" and body is not None:
        statements, unknown = [body], []
    elif language == "sql" and stmt.get("sql_body"):
        statements, unknown = [], ["a BEGIN ATOMIC body is not followed"]
    else:
        statements, unknown = [], []  # C, plpython …: no SQL of ours to read
    return Operation("define_routine", None, {"name": name, "statements": statements,
                                              "unknown": unknown, "language": language})


def _called_functions(select: dict) -> list[str]:
    """Functions a SELECT runs from its target list (``SELECT migrate_users()``)."""
    names = []
    for target in select.get("targetList") or ():
        names.extend(_functions_in(target))
    return names


def _drop_names(stmt: dict) -> list[str | None]:
    names: list[str | None] = []
    for obj in stmt.get("objects") or ():
        kind, body = _node(obj)
        if kind == "List":
            strings = _strings(body.get("items"))
        elif kind == "ObjectWithArgs":
            strings = _strings(body.get("objname"))
        elif kind == "String":
            strings = [body.get("sval")]
        else:
            strings = []
        names.append(strings[-1] if strings else None)
    return names


def _stmt_ops(kind: str, stmt: dict, sql: str, depth: int) -> list[Operation]:
    if kind == "AlterTableStmt":
        return _alter_table_ops(stmt)
    if kind == "IndexStmt":
        return [Operation("create_index", _relname(stmt.get("relation")), {
            "name": stmt.get("idxname"), "concurrently": bool(stmt.get("concurrent")),
            "unique": bool(stmt.get("unique"))})]
    if kind == "CreateStmt":
        columns = {}
        for elt in stmt.get("tableElts") or ():
            if "ColumnDef" in elt:
                info, _ = column_from_def(elt["ColumnDef"])
                columns[info.name.lower()] = info
        return [Operation("create_table", _relname(stmt.get("relation")), {
            "columns": columns, "if_not_exists": bool(stmt.get("if_not_exists"))})]
    if kind == "CreateTableAsStmt":
        into = stmt.get("into") or {}
        table = _relname(into.get("rel"))
        if stmt.get("objtype") == "OBJECT_MATVIEW":
            return [Operation("create_table", table, {"columns": {}, "materialized": True})]
        return [Operation("create_table", table, {"columns": {}})]
    if kind == "DropStmt":
        removed = stmt.get("removeType", "").replace("OBJECT_", "").lower()
        names = _drop_names(stmt)
        if removed == "index":
            return [Operation("drop_index", None, {"name": n, "concurrently": bool(
                stmt.get("concurrent"))}) for n in names]
        if removed in ("table", "view", "matview", "sequence", "schema", "type", "domain"):
            return [Operation("drop_table" if removed == "table" else "drop_object", n,
                              {"object": removed}) for n in names]
        if removed in ("function", "procedure"):
            return [Operation("drop_routine", None, {"name": (n or "").lower()})
                    for n in names]
        return [Operation("other", None, {"what": f"DROP {removed.upper()}"})]
    if kind == "RenameStmt":
        renamed = stmt.get("renameType", "").replace("OBJECT_", "").lower()
        table = _relname(stmt.get("relation"))
        if renamed == "column":
            return [Operation("rename_column", table, {"old": stmt.get("subname"),
                                                       "new": stmt.get("newname")})]
        if renamed in ("table", "view", "matview"):
            return [Operation("rename_table", table, {"new": stmt.get("newname")})]
        return [Operation("metadata", table, {"what": f"RENAME {renamed.upper()}"})]
    if kind == "AlterObjectSchemaStmt":
        return [Operation("set_schema", _relname(stmt.get("relation")),
                          {"schema": stmt.get("newschema")})]
    if kind == "VacuumStmt":
        options = {o.get("DefElem", {}).get("defname") for o in stmt.get("options") or ()}
        tables = [_relname(r.get("VacuumRelation", {}).get("relation"))
                  for r in stmt.get("rels") or ()]
        op_kind = "vacuum_full" if "full" in options else "vacuum"
        if not stmt.get("is_vacuumcmd"):
            op_kind = "analyze"
        return [Operation(op_kind, t) for t in tables if t] or [Operation(op_kind, None)]
    if kind == "ClusterStmt":
        return [Operation("cluster", _relname(stmt.get("relation")))]
    if kind == "ReindexStmt":
        options = {o.get("DefElem", {}).get("defname") for o in stmt.get("params") or ()}
        return [Operation("reindex", _relname(stmt.get("relation")) or stmt.get("name"),
                          {"concurrently": "concurrently" in options})]
    if kind == "AlterEnumStmt":
        return [Operation("alter_enum_add_value" if stmt.get("newVal") and not stmt.get("oldVal")
                          else "metadata", None, {"what": "ALTER TYPE",
                                                  "value": stmt.get("newVal")})]
    if kind == "TruncateStmt":
        return [Operation("truncate_table", _relname(r)) for r in stmt.get("relations") or ()]
    if kind == "TransactionStmt":
        tx = stmt.get("kind", "")
        what = "begin" if tx in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") else (
            "end" if tx in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK") else "other")
        return [Operation("transaction", None, {"what": what})]
    if kind == "VariableSetStmt":
        return [Operation("set_session", None, {"name": (stmt.get("name") or "").lower()})]
    if kind in ("UpdateStmt", "DeleteStmt"):
        return [Operation("dml_" + ("update" if kind == "UpdateStmt" else "delete"),
                          _relname(stmt.get("relation")),
                          {"has_where": stmt.get("whereClause") is not None})]
    if kind == "DoStmt":
        if depth >= _MAX_DEPTH:
            return [Operation("other", None, {"what": "DO"})]
        inner, unknown = _plpgsql_sql(sql)
        ops: list[Operation] = []
        for query in inner:
            ops.extend(_parse_text(query, depth + 1))
        for reason in unknown:
            ops.append(Operation("unparsed", None, {"reason": f"DO block: {reason}"}))
        return ops or [Operation("other", None, {"what": "DO"})]
    if kind == "CreateFunctionStmt":
        return [_routine(stmt, sql)]
    if kind == "CallStmt":
        names = _strings(stmt.get("funccall", {}).get("funcname"))
        return [Operation("call", None, {"names": [names[-1].lower()] if names else []})]
    if kind == "SelectStmt" and not stmt.get("fromClause"):
        names = _called_functions(stmt)
        if names:
            return [Operation("call", None, {"names": names, "only_known": True})]
    if kind == "LockStmt":
        return [Operation("lock_tables", _relname(r), {"mode": int(stmt.get("mode") or 0)})
                for r in stmt.get("relations") or ()]
    return [Operation("other", None, {"what": kind})]


def _parse_text(sql: str, depth: int) -> list[Operation]:
    try:
        stmts = parse_sql(sql).get("stmts") or []
    except Exception as exc:  # noqa: BLE001 - pglast.parser.ParseError and friends
        message = str(exc).split("\n")[0][:160]
        return [Operation("unparsed", None, {"reason": f"PostgreSQL parser: {message}"})]
    ops: list[Operation] = []
    encoded = None
    for raw in stmts:
        kind, stmt = _node(raw.get("stmt"))
        text = sql
        if len(stmts) > 1 and kind in ("DoStmt", "CreateFunctionStmt"):
            # several statements (a SQL function body): DO needs its own text for PL/pgSQL
            encoded = encoded or sql.encode("utf-8")
            start = raw.get("stmt_location", 0)
            length = raw.get("stmt_len") or len(encoded) - start
            text = encoded[start:start + length].decode("utf-8", "replace")
        ops.extend(_stmt_ops(kind, stmt, text, depth))
    return ops


def parse_postgres(sql: str) -> ParsedStatement:
    """Operations of one PostgreSQL statement; never raises."""
    try:
        ops = _parse_text(sql, 0)
    except RecursionError:
        ops = [Operation("unparsed", None, {"reason": "statement nests too deeply to read"})]
    return ParsedStatement(ops, parser="pglast")
