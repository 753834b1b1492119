"""Where table sizes, column definitions and the server version come from: a sizes file
(offline use, the pre-push hook) or a live database read through SQLAlchemy.

This is the only module of schema review that talks to a database.  MySQL/MariaDB sizes come
from ``information_schema.TABLES`` (estimates refreshed by ANALYZE TABLE); Postgres sizes from
``pg_class.reltuples`` (refreshed by ANALYZE) and ``pg_total_relation_size``.
"""
from __future__ import annotations

import json
from pathlib import Path

from greenlight.errors import UsageError

from schema_review.model import ColumnInfo, TableSize


SAMPLE_ROWS = 50_000  # the same sample bench/schema_costs.py times on the calibration servers


class SizeSource:
    """No sizes known: every existing table has an unknown size."""

    def size(self, table: str) -> TableSize:
        return TableSize(None, None, "unknown")

    def column(self, table: str, column: str) -> ColumnInfo | None:
        return None

    def server_version(self) -> str | None:
        return None

    def index_table(self, index: str | None) -> str | None:
        """The table an existing index belongs to (PostgreSQL's DROP INDEX names no table)."""
        return None

    def read_rate(self, table: str | None) -> float | None:
        """Rows per second the target reads from this table (a sample), for the estimates."""
        return None


class SizesFile(SizeSource):
    """``{"tables": {"users": {"rows": 5000000, "bytes": 2147483648}}}``; optional
    ``"server_version"`` and ``"columns": {"users": {"name": "varchar(40) not null"}}``."""

    def __init__(self, path: Path | str | None = None, data: dict | None = None):
        self.path = str(path or "<sizes>")
        if data is None:
            try:
                data = json.loads(Path(path).read_text())  # type: ignore[arg-type]
            except FileNotFoundError:
                raise UsageError(f"sizes file {self.path} does not exist: pass a JSON file "
                                 '{"tables": {"name": {"rows": N, "bytes": N}}}') from None
            except (OSError, ValueError) as exc:
                raise UsageError(f"sizes file {self.path} is not readable JSON: {exc}") from None
        tables = data.get("tables") if isinstance(data, dict) else None
        if not isinstance(tables, dict):
            raise UsageError(f"sizes file {self.path}: expected an object with a \"tables\" key "
                             'mapping table names to {"rows": N, "bytes": N}')
        self.tables: dict[str, TableSize] = {}
        for name, entry in tables.items():
            if not isinstance(entry, dict):
                raise UsageError(f"sizes file {self.path}: table {name!r} must map to "
                                 '{"rows": N, "bytes": N}')
            rows, size = entry.get("rows"), entry.get("bytes")
            for label, value in (("rows", rows), ("bytes", size)):
                if value is not None and (not isinstance(value, (int, float)) or value < 0):
                    raise UsageError(f"sizes file {self.path}: {name}.{label} must be a "
                                     f"non-negative number, not {value!r}")
            self.tables[name.lower()] = TableSize(
                int(rows) if rows is not None else None,
                int(size) if size is not None else None, "file")
        self._version = data.get("server_version")
        self.dialect = "mysql"  # set by the Reviewer: type names are canonicalised per dialect
        self.column_texts: dict[str, dict[str, str]] = {}
        for table, cols in (data.get("columns") or {}).items():
            if not isinstance(cols, dict):
                raise UsageError(f"sizes file {self.path}: columns.{table} must map column "
                                 "names to definitions such as \"varchar(40) not null\"")
            for name, definition in cols.items():
                self.column_texts.setdefault(table.lower(), {})[name.lower()] = str(definition)

    def column(self, table: str, column: str) -> ColumnInfo | None:
        text = self.column_texts.get(table.lower(), {}).get(column.lower())
        if text is None:
            return None
        return _column_from_text(column, text, postgres=self.dialect == "postgres")

    def size(self, table: str) -> TableSize:
        return self.tables.get(table.lower(), TableSize(None, None, "unknown"))

    def server_version(self) -> str | None:
        return self._version


class LiveDatabase(SizeSource):
    """Sizes, column definitions and version read from the database the migrations target."""

    def __init__(self, url: str, dialect: str):
        # SQLAlchemy only when a database is given: a review from files must not pay its import
        import sqlalchemy as sa

        from greenlight.db import database_error, open_engine

        self.dialect = dialect
        self.engine = open_engine(url, what="database the migrations target",
                                  pool_pre_ping=False)
        try:
            with self.engine.connect() as conn:
                self._version = str(conn.execute(sa.text("SELECT version()")).scalar())
        except sa.exc.SQLAlchemyError as exc:
            raise database_error("database the migrations target", url, exc,
                                 doing="cannot read") from None
        self._sizes: dict[str, TableSize] | None = None
        self._columns: dict[str, dict[str, ColumnInfo]] = {}
        self._sa = sa

    def server_version(self) -> str | None:
        return self._version

    def _load_sizes(self) -> dict[str, TableSize]:
        sa = self._sa
        if self.dialect == "postgres":
            return self._load_postgres_sizes()
        else:
            query = ("SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH "
                     "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        sizes = {}
        with self.engine.connect() as conn:
            for name, rows, size in conn.execute(sa.text(query)):
                rows = None if rows is None or rows < 0 else int(rows)  # -1: never analyzed
                sizes[str(name).lower()] = TableSize(rows, int(size or 0), "live")
        return sizes

    def _load_postgres_sizes(self) -> dict[str, TableSize]:
        """reltuples is -1 until the first ANALYZE (or VACUUM): a table filled by a bulk load
        and never analyzed would read as "rows unknown".  Then the statistics collector's
        n_live_tup counts the rows; failing that, the heap size over the row width (fixed-width
        columns at their length, variable ones at 32 bytes, plus the 28-byte tuple header and
        line pointer) estimates them."""
        sa = self._sa
        query = (
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid), "
            "pg_relation_size(c.oid), s.n_live_tup, (SELECT sum(CASE WHEN a.attlen > 0 THEN "
            "a.attlen ELSE 32 END) FROM pg_attribute a WHERE a.attrelid = c.oid AND "
            "a.attnum > 0 AND NOT a.attisdropped) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = ANY(current_schemas(false))")
        sizes = {}
        with self.engine.connect() as conn:
            for name, rows, total, heap, live, width in conn.execute(sa.text(query)):
                source = "live"
                if rows is None or rows < 0:  # never analyzed
                    rows, source = estimate_rows(heap, live, width)
                sizes[str(name).lower()] = TableSize(rows, int(total or 0), source)
        return sizes

    def read_rate(self, table: str | None) -> float | None:
        """Times reading the first SAMPLE_ROWS rows of the table (read-only, bounded), once
        per table; None when the table is missing or the read fails."""
        rates: dict[str, float | None] = self.__dict__.setdefault("_rates", {})
        if not table:
            return None
        if table in rates:
            return rates[table]
        import time

        sa = self._sa
        quote = '"' if self.dialect == "postgres" else "`"
        name = quote + table.replace(quote, quote * 2) + quote
        rate = None
        try:
            with self.engine.connect() as conn:
                start = time.perf_counter()
                count = conn.execute(sa.text(f"SELECT count(*) FROM (SELECT * FROM {name} "
                                             f"LIMIT {SAMPLE_ROWS}) s")).scalar()
                elapsed = time.perf_counter() - start
            if count and count >= 1000 and elapsed > 0:
                rate = count / elapsed
        except sa.exc.DBAPIError:
            rate = None
        rates[table] = rate
        return rate

    def index_table(self, index: str | None) -> str | None:
        if not index or self.dialect != "postgres":
            return None
        sa = self._sa
        with self.engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT tablename FROM pg_indexes WHERE indexname = :i AND "
                "schemaname = ANY(current_schemas(false)) LIMIT 1"), {"i": index}).scalar()

    def size(self, table: str) -> TableSize:
        if self._sizes is None:
            self._sizes = self._load_sizes()
        return self._sizes.get(table.lower(), TableSize(None, None, "unknown"))

    def column(self, table: str, column: str) -> ColumnInfo | None:
        if table not in self._columns:
            self._columns[table] = self._load_columns(table)
        return self._columns[table].get(column.lower())

    def _load_columns(self, table: str) -> dict[str, ColumnInfo]:
        sa = self._sa
        result: dict[str, ColumnInfo] = {}
        with self.engine.connect() as conn:
            if self.dialect == "postgres":
                rows = conn.execute(sa.text(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                    "a.atthasdef FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = :t AND "
                    "n.nspname = ANY(current_schemas(false)) AND a.attnum > 0 AND NOT "
                    "a.attisdropped"), {"t": table})
                for name, typ, notnull, hasdef in rows:
                    base, params = parse_type_text(typ, postgres=True)
                    result[name.lower()] = ColumnInfo(name, base, params, not notnull, hasdef)
            else:
                rows = conn.execute(sa.text(
                    "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
                    "CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, EXTRA FROM "
                    "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
                    "TABLE_NAME = :t"), {"t": table})
                for name, typ, nullable, default, chars, octets, extra in rows:
                    base, params = parse_type_text(str(typ), postgres=False)
                    width = int(octets) // int(chars) if chars and octets else None
                    result[name.lower()] = ColumnInfo(
                        name, base, params, nullable == "YES", default is not None,
                        charset_bytes=width, unsigned="unsigned" in str(typ).lower(),
                        auto_increment="auto_increment" in str(extra or "").lower())
        return result


def estimate_rows(heap_bytes: int | None, live_rows: int | None, width: int | None
                  ) -> tuple[int | None, str]:
    """Rows of a never-analyzed PostgreSQL table: (rows, source)."""
    if live_rows:
        return int(live_rows), "live: n_live_tup, never analyzed"
    if heap_bytes == 0:
        return 0, "live"
    if heap_bytes and width:
        return int(heap_bytes // (int(width) + 28)), "live: estimated from bytes, never analyzed"
    return None, "live: rows unknown, never analyzed"


def parse_type_text(text: str, postgres: bool) -> tuple[str, tuple]:
    """'character varying(40)' → ('varchar', (40,)); "enum('a','b')" → ('enum', ('a', 'b'));
    'int(11) unsigned' → ('uint', ())."""
    import re

    from schema_review.parse_postgres import canonical_type

    text = text.strip()
    match = re.match(r"([a-zA-Z ]+?)\s*(?:\((.*)\))?\s*(unsigned)?(\s+zerofill)?\s*$", text,
                     re.IGNORECASE | re.DOTALL)
    if not match:
        return text.lower(), ()
    base = match.group(1).strip().lower()
    raw = match.group(2)
    params: tuple = ()
    if raw:
        if base in ("enum", "set"):
            params = tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", raw))
        else:
            params = tuple(int(p) if p.strip().isdigit() else p.strip() for p in raw.split(","))
    if postgres:
        return canonical_type(base), params
    if base in ("int", "integer", "tinyint", "smallint", "mediumint", "bigint"):
        base = "int" if base == "integer" else base
        params = ()  # display width means nothing
        if match.group(3):
            base = "u" + base
    elif base in ("decimal", "numeric"):
        base = "decimal"
    return base, params


def _column_from_text(name: str, definition: str, postgres: bool) -> ColumnInfo:
    """'varchar(40) not null' (a sizes file's ``columns`` entry) → ColumnInfo."""
    import re

    text = definition.strip()
    not_null = bool(re.search(r"\bnot\s+null\b", text, re.IGNORECASE))
    has_default = bool(re.search(r"\bdefault\b", text, re.IGNORECASE))
    type_text = re.split(r"\s+(?:not\s+null|null|default)\b", text, maxsplit=1,
                         flags=re.IGNORECASE)[0]
    base, params = parse_type_text(type_text, postgres=postgres)
    return ColumnInfo(name, base, params, not not_null, has_default,
                      auto_increment=bool(re.search(r"\bauto_increment\b", text, re.I)))
