"""What earlier statements of the same change tell the rules about later ones.

A table created earlier in the change is new and small; a column's old definition (needed to
judge MODIFY and type changes) comes from earlier statements or, failing that, the live schema;
statements inside one explicit transaction are judged together (NOT VALID then VALIDATE in one
transaction, CREATE INDEX CONCURRENTLY inside BEGIN); session settings such as
``foreign_key_checks=0`` change what MySQL does.
"""
from __future__ import annotations

from typing import Callable

from schema_review.model import ColumnInfo, Operation

ColumnLookup = Callable[[str, str], "ColumnInfo | None"]


def _key(name: str | None) -> str:
    return (name or "").strip('`"').split(".")[-1].lower()


class SchemaContext:
    """Mutable state carried from statement to statement (and file to file) in one review."""

    def __init__(self, live_column: ColumnLookup | None = None):
        self._live_column = live_column
        self.new_tables: set[str] = set()
        self.columns: dict[tuple[str, str], ColumnInfo] = {}
        self.dropped_columns: set[tuple[str, str]] = set()
        self.validated_not_null: set[tuple[str, str]] = set()
        self.not_valid_in_tx: dict[tuple[str, str], int] = {}
        self.not_null_checks: dict[tuple[str, str], str] = {}  # (table, constraint) -> column
        self.in_transaction = False
        self.transaction_id = 0
        self.session: dict[str, str] = {}
        self.variables: dict[str, list[str] | None] = {}  # MySQL user variables (@s)
        self.prepared: dict[str, tuple[list[str] | None, str]] = {}  # name -> (texts, from)
        self.routines: dict[str, dict] = {}  # procedures/functions defined in this change
        self.indexes: dict[str, str] = {}  # index name -> table, for DROP INDEX
        self.created_if_not_exists: set[str] = set()
        self.enum_values_in_tx: set[str] = set()  # ALTER TYPE … ADD VALUE in the open transaction

    # --- files and transactions -------------------------------------------------------------
    def begin_file(self) -> None:
        """Each migration file runs in its own session: transactions and SET do not carry."""
        self.in_transaction = False
        self.enum_values_in_tx = set()
        self.session = {}
        self.variables = {}
        self.prepared = {}

    def begin_transaction(self) -> None:
        self.in_transaction = True
        self.transaction_id += 1

    def end_transaction(self) -> None:
        self.in_transaction = False
        self.enum_values_in_tx = set()

    # --- questions the rules ask ------------------------------------------------------------
    def is_new(self, table: str | None) -> bool:
        return _key(table) in self.new_tables

    def index_table(self, index: str | None) -> str | None:
        """The table of an index created earlier in the change, if any."""
        return self.indexes.get(_key(index))

    def column(self, table: str | None, column: str | None) -> ColumnInfo | None:
        """The column's definition before this statement: from the change, else live."""
        key = (_key(table), _key(column))
        if key in self.columns:
            return self.columns[key]
        if key in self.dropped_columns or self._live_column is None or not table or not column:
            return None
        try:
            info = self._live_column(key[0], key[1])
        except Exception:  # noqa: BLE001 - the live schema is a hint; a failure is "unknown"
            info = None
        if info is not None:
            self.columns[key] = info
        return info

    def session_value(self, name: str) -> str | None:
        return self.session.get(name.lower())

    # --- learning from a statement after it was judged --------------------------------------
    def learn(self, op: Operation) -> None:
        table = _key(op.table)
        kind = op.kind
        if kind == "create_table":
            self.new_tables.add(table)
            self.created_if_not_exists.discard(table)
            if op.get("if_not_exists"):
                self.created_if_not_exists.add(table)
            for name, info in (op.get("columns") or {}).items():
                self.columns[(table, _key(name))] = info
        elif kind in ("add_column", "modify_column"):
            info: ColumnInfo = op.get("column")
            if info is not None:
                if op.get("rename_from"):
                    self.columns.pop((table, _key(op.get("rename_from"))), None)
                self.columns[(table, _key(info.name))] = info
        elif kind == "alter_column_type":
            old = self.column(op.table, op.get("column"))
            new: ColumnInfo = op.get("new_type")
            if new is not None:
                new.nullable = old.nullable if old else True
                new.has_default = old.has_default if old else False
                self.columns[(table, _key(op.get("column")))] = new
        elif kind in ("set_not_null", "drop_not_null", "set_default", "drop_default"):
            info = self.column(op.table, op.get("column"))
            if info is not None:
                if kind == "set_not_null":
                    info.nullable = False
                elif kind == "drop_not_null":
                    info.nullable = True
                else:
                    info.has_default = kind == "set_default"
        elif kind == "rename_column":
            info = self.columns.pop((table, _key(op.get("old"))), None)
            if info is not None:
                info.name = op.get("new")
                self.columns[(table, _key(op.get("new")))] = info
        elif kind == "drop_column":
            self.columns.pop((table, _key(op.get("column"))), None)
            self.dropped_columns.add((table, _key(op.get("column"))))
        elif kind == "rename_table":
            new_name = _key(op.get("new"))
            if table in self.new_tables:
                self.new_tables.add(new_name)
            for (t, c), info in list(self.columns.items()):
                if t == table:
                    self.columns[(new_name, c)] = info
        elif kind == "drop_table":
            self.new_tables.discard(table)
        elif kind == "add_constraint":
            name = _key(op.get("name"))
            if op.get("not_valid") and self.in_transaction:
                self.not_valid_in_tx[(table, name)] = self.transaction_id
            column = op.get("not_null_column")
            if column and op.get("not_valid"):
                self.not_null_checks[(table, name)] = column
            elif column:
                self.validated_not_null.add((table, _key(column)))
        elif kind == "validate_constraint":
            column = self.not_null_checks.get((table, _key(op.get("name"))))
            if column:
                self.validated_not_null.add((table, _key(column)))
        elif kind in ("create_index", "add_index") and op.get("name"):
            self.indexes[_key(op.get("name"))] = table
        elif kind == "alter_enum_add_value" and self.in_transaction and op.get("value"):
            self.enum_values_in_tx.add(op.get("value"))
        elif kind == "set_session":
            self.session[op.get("name", "")] = str(op.get("value", ""))
        elif kind == "transaction":
            if op.get("what") == "begin":
                self.begin_transaction()
            elif op.get("what") == "end":
                self.end_transaction()

    def not_valid_added_in_this_transaction(self, table: str | None, name: str | None) -> bool:
        tx = self.not_valid_in_tx.get((_key(table), _key(name)))
        return self.in_transaction and tx == self.transaction_id
