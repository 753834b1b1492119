"""libpg_query's JSON parse, called through its C API without importing pglast's Python package.

pglast's compiled ``pglast.parser`` embeds libpg_query (PostgreSQL's own parser) and exports its
C functions.  Importing it, though, first imports the ``pglast`` package and its AST and enum
modules (thousands of generated classes): 0.04-0.05 s of CPU, a sixth of a whole CLI review of
the 562-file corpus, for objects the review never builds (it reads libpg_query's JSON).  So the
same shared library is opened with ctypes and ``pg_query_parse`` / ``pg_query_parse_plpgsql``
are called directly: the same parser and the same JSON as ``pglast.parser.parse_sql_json`` /
``parse_plpgsql_json``.

Errors keep pglast's exact exceptions and messages: when libpg_query reports one, the statement
is parsed again through pglast (imported then, errors are rare), which raises its
``ParseError``.  If the library or its symbols cannot be found (another pglast build), pglast's
functions are used as before.
"""
from __future__ import annotations

import json
import os
import sys


def _library_path() -> str | None:
    """pglast's compiled parser module, found without importing the pglast package."""
    loaded = sys.modules.get("pglast.parser")
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    from importlib.machinery import EXTENSION_SUFFIXES, PathFinder

    spec = PathFinder.find_spec("pglast")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for suffix in EXTENSION_SUFFIXES:
            candidate = os.path.join(folder, "parser" + suffix)
            if os.path.exists(candidate):
                return candidate
    return None


def _bind():
    """(parse, parse_plpgsql) over the C API, or None when it cannot be bound."""
    try:
        import ctypes

        path = _library_path()
        if path is None:
            return None
        lib = ctypes.CDLL(path)

        class ParseResult(ctypes.Structure):  # pg_query.h: PgQueryParseResult
            _fields_ = [("parse_tree", ctypes.c_void_p), ("stderr_buffer", ctypes.c_void_p),
                        ("error", ctypes.c_void_p)]

        class PlpgsqlResult(ctypes.Structure):  # pg_query.h: PgQueryPlpgsqlParseResult
            _fields_ = [("plpgsql_funcs", ctypes.c_void_p), ("error", ctypes.c_void_p)]

        bindings = []
        for name, free_name, result, tree_field in (
                ("pg_query_parse", "pg_query_free_parse_result", ParseResult, "parse_tree"),
                ("pg_query_parse_plpgsql", "pg_query_free_plpgsql_parse_result", PlpgsqlResult,
                 "plpgsql_funcs")):
            call, free = getattr(lib, name), getattr(lib, free_name)
            call.argtypes, call.restype = [ctypes.c_char_p], result
            free.argtypes, free.restype = [result], None
            bindings.append(_caller(call, free, tree_field, ctypes.string_at))
    except (OSError, AttributeError, ImportError):
        return None
    return tuple(bindings)


def _caller(call, free, tree_field: str, string_at):
    """``text -> JSON text``, or None when libpg_query reports an error (or returns no tree);
    the C result is always freed."""
    def parse(sql: str) -> str | None:
        result = call(sql.encode("utf-8"))
        try:
            tree = getattr(result, tree_field)
            if result.error or not tree:
                return None
            return string_at(tree).decode("utf-8")
        finally:
            free(result)
    return parse


_BOUND = _bind()


def parse_sql(sql: str) -> dict:
    """``json.loads(pglast.parser.parse_sql_json(sql))``; raises pglast's ParseError."""
    if _BOUND is not None:
        tree = _BOUND[0](sql)
        if tree is not None:
            return json.loads(tree)
    from pglast.parser import parse_sql_json

    return json.loads(parse_sql_json(sql))


def parse_plpgsql(sql: str):
    """``pglast.parse_plpgsql(sql)``; raises pglast's ParseError."""
    if _BOUND is not None:
        tree = _BOUND[1](sql)
        if tree is not None:
            return json.loads(tree)
    from pglast import parse_plpgsql as pglast_parse_plpgsql

    return pglast_parse_plpgsql(sql)
