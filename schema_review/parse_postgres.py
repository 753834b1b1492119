"""PostgreSQL statements to operations with pglast (PostgreSQL's own parser).

pglast types every statement the rules care about, including VALIDATE CONSTRAINT, USING INDEX,
ALTER TYPE ... ADD VALUE, ENABLE ROW LEVEL SECURITY and DO bodies, so nothing safe is flagged
as unparsed.  DO and function bodies are read with ``parse_plpgsql`` and the SQL inside them is
reviewed like top-level statements.
"""
from __future__ import annotations

import json

import pglast
from pglast import ast, enums

from schema_review.model import ColumnInfo, Operation, ParsedStatement

# Functions whose value changes per row: a DEFAULT using them makes ADD COLUMN rewrite the table.
VOLATILE_FUNCTIONS = {"random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v1",
                      "uuid_generate_v4", "timeofday", "nextval", "txid_current", "setseed",
                      "uuidv4", "uuidv7", "uuid_generate_v1mc", "random_normal"}
# Stable or immutable functions commonly used in defaults: no rewrite.
STABLE_FUNCTIONS = {"now", "statement_timestamp", "transaction_timestamp", "current_setting",
                    "lower", "upper", "to_timestamp", "make_interval", "jsonb_build_object",
                    "json_build_object", "array", "coalesce", "concat", "length", "abs",
                    "date_trunc", "to_jsonb", "to_json", "current_database", "current_schema",
                    "now", "current_user", "interval", "timezone", "format"}
_SERIAL = {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}
_TYPE_ALIASES = {"int4": "integer", "int8": "bigint", "int2": "smallint", "int": "integer",
                 "float8": "double precision", "float4": "real", "bool": "boolean",
                 "bpchar": "char", "character varying": "varchar", "character": "char",
                 "timestamp without time zone": "timestamp",
                 "timestamp with time zone": "timestamptz", "decimal": "numeric"}


def canonical_type(name: str) -> str:
    name = name.lower()
    return _TYPE_ALIASES.get(name, name)


def _type_info(type_name: ast.TypeName | None) -> tuple[str, tuple]:
    if type_name is None:
        return "unknown", ()
    names = [n.sval for n in type_name.names if isinstance(n, ast.String)]
    base = canonical_type(names[-1] if names else "unknown")
    params = []
    for mod in type_name.typmods or ():
        if isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer):
            params.append(mod.val.ival)
        else:
            params.append("?")
    if type_name.arrayBounds:
        base += "[]"
    return base, tuple(params)


def _functions_in(node) -> list[str]:
    """Names of every function called inside an expression tree (pglast nodes)."""
    found: list[str] = []

    def walk(value):
        if isinstance(value, ast.FuncCall):
            found.append(value.funcname[-1].sval.lower())
        if isinstance(value, ast.Node):
            for attr in value:
                walk(getattr(value, attr))
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    walk(node)
    return found


def column_from_def(coldef: ast.ColumnDef) -> tuple[ColumnInfo, dict]:
    """ColumnInfo plus the attributes ADD COLUMN rules need (default volatility, inline
    constraints, identity/serial/generated)."""
    base, params = _type_info(coldef.typeName)
    info = ColumnInfo(coldef.colname or "?", base, params, nullable=not coldef.is_not_null)
    attrs: dict = {"column": info}
    if base in _SERIAL:
        attrs["serial"] = True
        info.has_default = True
        info.nullable = False
    for con in coldef.constraints or ():
        contype = con.contype
        if contype == enums.ConstrType.CONSTR_NOTNULL:
            info.nullable = False
        elif contype == enums.ConstrType.CONSTR_DEFAULT:
            info.has_default = True
            funcs = _functions_in(con.raw_expr)
            volatile = [f for f in funcs if f in VOLATILE_FUNCTIONS]
            unknown = [f for f in funcs if f not in VOLATILE_FUNCTIONS | STABLE_FUNCTIONS]
            if volatile:
                attrs["volatile_default"] = volatile[0]
            elif unknown:
                attrs["unknown_default_function"] = unknown[0]
            if not (isinstance(con.raw_expr, ast.A_Const) and con.raw_expr.isnull):
                attrs["non_null_default"] = True
        elif contype == enums.ConstrType.CONSTR_IDENTITY:
            attrs["identity"] = True
            info.nullable = False
            info.has_default = True
        elif contype == enums.ConstrType.CONSTR_GENERATED:
            attrs["generated"] = True
        elif contype == enums.ConstrType.CONSTR_CHECK:
            attrs["inline_check"] = True
        elif contype == enums.ConstrType.CONSTR_FOREIGN:
            attrs["inline_fk"] = con.pktable.relname if con.pktable else True
        elif contype in (enums.ConstrType.CONSTR_PRIMARY, enums.ConstrType.CONSTR_UNIQUE):
            attrs["inline_index"] = "primary" if contype == enums.ConstrType.CONSTR_PRIMARY \
                else "unique"
            if contype == enums.ConstrType.CONSTR_PRIMARY:
                info.nullable = False
    return info, attrs


def _is_not_null_check(expr) -> str | None:
    """Column name if the CHECK expression is exactly ``col IS NOT NULL``."""
    if isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL \
            and isinstance(expr.arg, ast.ColumnRef):
        fields = [f.sval for f in expr.arg.fields if isinstance(f, ast.String)]
        return fields[-1] if fields else None
    return None


def _constraint_op(table: str, con: ast.Constraint) -> Operation:
    contype = con.contype
    attrs = {"name": con.conname, "not_valid": bool(con.skip_validation)}
    if contype == enums.ConstrType.CONSTR_CHECK:
        attrs["kind"] = "check"
        column = _is_not_null_check(con.raw_expr)
        if column:
            attrs["not_null_column"] = column
    elif contype == enums.ConstrType.CONSTR_FOREIGN:
        attrs["kind"] = "foreign_key"
        attrs["references"] = con.pktable.relname if con.pktable else None
    elif contype in (enums.ConstrType.CONSTR_PRIMARY, enums.ConstrType.CONSTR_UNIQUE):
        attrs["kind"] = "primary_key" if contype == enums.ConstrType.CONSTR_PRIMARY else "unique"
        attrs["using_index"] = con.indexname
        attrs["columns"] = [k.sval for k in con.keys or () if isinstance(k, ast.String)]
    elif contype == enums.ConstrType.CONSTR_EXCLUSION:
        attrs["kind"] = "exclusion"
    else:
        attrs["kind"] = enums.ConstrType(contype).name.lower().replace("constr_", "")
    return Operation("add_constraint", table, attrs)


_SIMPLE_SUBTYPES = {
    "AT_DropNotNull": "drop_not_null", "AT_SetTableSpace": "set_tablespace",
    "AT_SetLogged": "set_logged", "AT_SetUnLogged": "set_logged",
    "AT_EnableRowSecurity": "enable_rls", "AT_ForceRowSecurity": "enable_rls",
    "AT_DropConstraint": "drop_constraint", "AT_ValidateConstraint": "validate_constraint",
    "AT_DropColumn": "drop_column", "AT_SetNotNull": "set_not_null",
}


def _alter_table_ops(stmt: ast.AlterTableStmt) -> list[Operation]:
    table = stmt.relation.relname if stmt.relation else None
    if stmt.objtype != enums.ObjectType.OBJECT_TABLE:
        kind = enums.ObjectType(stmt.objtype).name.replace("OBJECT_", "").lower()
        if kind == "index":
            return [Operation("metadata", table, {"what": "ALTER INDEX"})]
        return [Operation("other", table, {"what": f"ALTER {kind.upper()}"})]
    ops = []
    for cmd in stmt.cmds or ():
        subtype = enums.AlterTableType(cmd.subtype).name
        if subtype == "AT_AddColumn":
            info, attrs = column_from_def(cmd.def_)
            ops.append(Operation("add_column", table, attrs))
        elif subtype == "AT_AlterColumnType":
            base, params = _type_info(cmd.def_.typeName)
            ops.append(Operation("alter_column_type", table, {
                "column": cmd.name, "new_type": ColumnInfo(cmd.name, base, params),
                "using": cmd.def_.raw_default is not None}))
        elif subtype == "AT_ColumnDefault":
            kind = "set_default" if cmd.def_ is not None else "drop_default"
            ops.append(Operation(kind, table, {"column": cmd.name}))
        elif subtype == "AT_AddConstraint":
            ops.append(_constraint_op(table, cmd.def_))
        elif subtype in _SIMPLE_SUBTYPES:
            ops.append(Operation(_SIMPLE_SUBTYPES[subtype], table,
                                 {"column": cmd.name, "name": cmd.name,
                                  "what": subtype[3:]}))
        else:
            ops.append(Operation("metadata", table, {"what": subtype[3:]}))
    return ops


def _plpgsql_sql(sql: str) -> list[str] | None:
    """SQL statements inside a DO body; None if it uses dynamic EXECUTE (unknowable)."""
    try:
        tree = pglast.parse_plpgsql(sql)
    except Exception:  # noqa: BLE001 - a body PL/pgSQL cannot read
        return None
    found: list[str] = []
    dynamic = False

    def walk(value):
        nonlocal dynamic
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "PLpgSQL_stmt_dynexecute":
                    dynamic = True
                if key == "PLpgSQL_stmt_execsql":
                    query = item.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
                    if query:
                        found.append(query)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(tree) if isinstance(tree, str) else tree)
    return None if dynamic else found


def _stmt_ops(stmt, sql: str, depth: int = 0) -> list[Operation]:
    if isinstance(stmt, ast.AlterTableStmt):
        return _alter_table_ops(stmt)
    if isinstance(stmt, ast.IndexStmt):
        return [Operation("create_index", stmt.relation.relname, {
            "name": stmt.idxname, "concurrently": bool(stmt.concurrent),
            "unique": bool(stmt.unique)})]
    if isinstance(stmt, ast.CreateStmt):
        columns = {}
        for elt in stmt.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                info, _ = column_from_def(elt)
                columns[info.name.lower()] = info
        return [Operation("create_table", stmt.relation.relname, {"columns": columns})]
    if isinstance(stmt, ast.CreateTableAsStmt):
        return [Operation("create_table", stmt.into.rel.relname, {"columns": {}})]
    if isinstance(stmt, ast.DropStmt):
        kind = enums.ObjectType(stmt.removeType).name.replace("OBJECT_", "").lower()
        names = []
        for obj in stmt.objects or ():
            parts = obj if isinstance(obj, tuple) else (obj,)
            strings = [p.sval for p in parts if isinstance(p, ast.String)]
            names.append(strings[-1] if strings else None)
        if kind == "index":
            return [Operation("drop_index", None, {"name": n, "concurrently": bool(
                stmt.concurrent)}) for n in names]
        if kind in ("table", "view", "matview", "sequence", "schema", "type", "domain"):
            return [Operation("drop_table" if kind == "table" else "drop_object", n,
                              {"object": kind}) for n in names]
        return [Operation("other", None, {"what": f"DROP {kind.upper()}"})]
    if isinstance(stmt, ast.RenameStmt):
        kind = enums.ObjectType(stmt.renameType).name.replace("OBJECT_", "").lower()
        table = stmt.relation.relname if stmt.relation else None
        if kind == "column":
            return [Operation("rename_column", table, {"old": stmt.subname,
                                                       "new": stmt.newname})]
        if kind in ("table", "view", "matview"):
            return [Operation("rename_table", table, {"new": stmt.newname})]
        return [Operation("metadata", table, {"what": f"RENAME {kind.upper()}"})]
    if isinstance(stmt, ast.AlterObjectSchemaStmt):
        table = stmt.relation.relname if stmt.relation else None
        return [Operation("set_schema", table, {"schema": stmt.newschema})]
    if isinstance(stmt, ast.VacuumStmt):
        options = {o.defname for o in stmt.options or ()}
        tables = [r.relation.relname for r in stmt.rels or () if r.relation]
        kind = "vacuum_full" if "full" in options else "vacuum"
        if not stmt.is_vacuumcmd:
            kind = "analyze"
        return [Operation(kind, t) for t in tables] or [Operation(kind, None)]
    if isinstance(stmt, ast.ClusterStmt):
        return [Operation("cluster", stmt.relation.relname if stmt.relation else None)]
    if isinstance(stmt, ast.ReindexStmt):
        options = {o.defname for o in stmt.params or ()}
        return [Operation("reindex", stmt.relation.relname if stmt.relation else stmt.name,
                          {"concurrently": "concurrently" in options})]
    if isinstance(stmt, ast.AlterEnumStmt):
        return [Operation("alter_enum_add_value" if stmt.newVal and not stmt.oldVal
                          else "metadata", None, {"what": "ALTER TYPE"})]
    if isinstance(stmt, ast.TruncateStmt):
        return [Operation("truncate_table", r.relname) for r in stmt.relations or ()]
    if isinstance(stmt, ast.TransactionStmt):
        kind = enums.TransactionStmtKind(stmt.kind).name
        what = "begin" if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") else (
            "end" if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK") else "other")
        return [Operation("transaction", None, {"what": what})]
    if isinstance(stmt, ast.VariableSetStmt):
        return [Operation("set_session", None, {"name": (stmt.name or "").lower()})]
    if isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        return [Operation("dml_" + ("update" if isinstance(stmt, ast.UpdateStmt) else "delete"),
                          stmt.relation.relname, {"has_where": stmt.whereClause is not None})]
    if isinstance(stmt, ast.DoStmt):
        if depth > 2:
            return [Operation("other", None, {"what": "DO"})]
        inner = _plpgsql_sql(sql)
        if inner is None:
            return [Operation("unparsed", None, {
                "reason": "DO block runs dynamic SQL (EXECUTE): its statements cannot be read"})]
        ops: list[Operation] = []
        for query in inner:
            ops.extend(_parse_text(query, depth + 1))
        return ops or [Operation("other", None, {"what": "DO"})]
    if isinstance(stmt, ast.LockStmt):
        return [Operation("lock_tables", r.relname, {"mode": int(stmt.mode)})
                for r in stmt.relations or ()]
    return [Operation("other", None, {"what": type(stmt).__name__})]


def _parse_text(sql: str, depth: int) -> list[Operation]:
    try:
        raw = pglast.parse_sql(sql)
    except Exception as exc:  # noqa: BLE001 - pglast.parser.ParseError and friends
        message = str(exc).split("\n")[0][:160]
        return [Operation("unparsed", None, {"reason": f"PostgreSQL parser: {message}"})]
    ops: list[Operation] = []
    for raw_stmt in raw:
        ops.extend(_stmt_ops(raw_stmt.stmt, sql, depth))
    return ops


def parse_postgres(sql: str) -> ParsedStatement:
    """Operations of one PostgreSQL statement; never raises."""
    try:
        ops = _parse_text(sql, 0)
    except RecursionError:
        ops = [Operation("unparsed", None, {"reason": "statement nests too deeply to read"})]
    return ParsedStatement(ops, parser="pglast")
