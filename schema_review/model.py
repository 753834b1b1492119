"""The data that flows through schema review: operations parsed from statements, column
definitions, table sizes, server versions and the findings handed to renderers and approvals.

Kept free of parser types so rules, context and renderers do not depend on sqlglot or pglast.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any

from greenlight.errors import UsageError

DEFAULT_VERSIONS = {"mysql": "8.0.35", "mariadb": "10.11", "postgres": "15"}


@dataclass(frozen=True)
class ServerVersion:
    """Flavour (mysql, mariadb, postgres) and numeric version, e.g. mariadb 10.11.6."""

    flavour: str
    numbers: tuple[int, int, int]

    @classmethod
    def parse(cls, flavour: str, text: str | None) -> "ServerVersion":
        """Read '8.0.35', '10.11.6-MariaDB-0+deb12u1' or 'PostgreSQL 15.4 on ...'."""
        raw = text or DEFAULT_VERSIONS[flavour]
        if "mariadb" in raw.lower() and flavour == "mysql":
            flavour = "mariadb"
        match = re.search(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", raw)
        if not match:
            raise UsageError(f"server version {raw!r} is not a version number such as 8.0.35, "
                             "10.11 or 15")
        numbers = tuple(int(g) if g else 0 for g in match.groups())
        return cls(flavour, numbers)  # type: ignore[arg-type]

    def at_least(self, *numbers: int) -> bool:
        return self.numbers >= tuple(numbers) + (0,) * (3 - len(numbers))

    def __str__(self) -> str:
        return f"{self.flavour} {'.'.join(map(str, self.numbers))}"


@dataclass
class ColumnInfo:
    """What we know of a column's definition: enough to judge MODIFY and type changes."""

    name: str
    type: str                      # lower-case base type name: varchar, int, enum, text ...
    params: tuple = ()             # (length,) or (precision, scale) or enum members
    nullable: bool = True
    has_default: bool = False
    charset_bytes: int | None = None  # bytes per character (MySQL), when known
    unsigned: bool = False
    auto_increment: bool = False   # MySQL: making a column AUTO_INCREMENT copies the table

    def render(self) -> str:
        params = f"({', '.join(map(str, self.params))})" if self.params else ""
        return f"{self.type}{params}{'' if self.nullable else ' NOT NULL'}"


@dataclass
class Operation:
    """One thing a statement does to the schema (an ALTER TABLE may carry several)."""

    kind: str
    table: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class ParsedStatement:
    """A statement after parsing: its operations and statement-wide clauses."""

    operations: list[Operation]
    algorithm: str | None = None   # MySQL ALGORITHM= clause, upper-case
    lock: str | None = None        # MySQL LOCK= clause, upper-case
    parser: str = ""               # "sqlglot", "keywords", "pglast"


@dataclass
class TableSize:
    rows: int | None
    bytes: int | None
    source: str  # "file", "live", "new" (created in this change), "unknown"


@dataclass
class Assessment:
    """What a rule says an operation does on the server, before sizes are considered."""

    rule: str
    effect: str                     # instant, nocopy, inplace, rebuild, copy, metadata, scan ...
    size_dependent: bool = False    # dangerous only when the table is large
    compatibility: bool = False     # breaks the release still running during a canary
    fails: bool = False             # the server will refuse or the statement errors
    blocks_writes: bool = False
    reasons: list[str] = field(default_factory=list)
    alternative_kind: str | None = None  # key for alternatives.py


@dataclass
class Finding:
    """One operation of one statement, judged: the unit of the JSON contract."""

    file: str
    line: int
    statement: str
    table: str | None
    operation: str
    rule: str
    verdict: str                    # "safe" or "review"
    danger: str | None              # size, compatibility, fails, unparsed or None
    effect: str
    blocks_writes: bool
    reasons: list[str]
    alternative: str | None
    table_size: dict | None
    key: str
    approval: dict | None = None    # {"decision", "user", "at", "comment"} when decided

    @property
    def needs_review(self) -> bool:
        return self.verdict == "review" and not (
            self.approval and self.approval.get("decision") == "approved")

    def to_dict(self) -> dict:
        # by hand, one literal: dataclasses.asdict deep-copied every field, and even a getattr
        # per field was a visible share of the CLI's CPU
        return {
            "file": self.file, "line": self.line, "statement": self.statement,
            "table": self.table, "operation": self.operation, "rule": self.rule,
            "verdict": self.verdict, "danger": self.danger, "effect": self.effect,
            "blocks_writes": self.blocks_writes, "reasons": list(self.reasons),
            "alternative": self.alternative,
            "table_size": dict(self.table_size) if self.table_size else self.table_size,
            "key": self.key,
            "approval": dict(self.approval) if self.approval else self.approval,
            "needs_review": self.needs_review,
        }


# Runs of plain characters are taken whole (possessive ++: the same matches as one character
# at a time, without stepping through each).
_QUOTED = re.compile(r"('(?:[^'\\]++|\\.|'')*'|\"(?:[^\"\\]++|\\.|\"\")*\"|`[^`]*`)",
                     re.DOTALL)


def _collapse_space(text: str) -> str:
    """Each run of whitespace as one space, as a regex substitution of whitespace runs would
    (str.split and the regex whitespace class agree on what whitespace is), by split/join."""
    words = text.split()
    if not words:
        return " " if text else ""
    joined = " ".join(words)
    if text[0].isspace():
        joined = " " + joined
    if text[-1].isspace():
        joined += " "
    return joined


def normalize_statement(sql: str) -> str:
    """Collapse whitespace outside quotes and drop a trailing ';' so reformatting keeps an
    approval but any real edit (a different column, type or literal) loses it."""
    text = sql.strip().rstrip(";").strip()
    if "'" not in text and '"' not in text and "`" not in text:
        return " ".join(text.split()).lower()
    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # even pieces are outside quotes
        parts[i] = _collapse_space(parts[i]).lower()
    return "".join(parts).strip()


def finding_key(path: str, sql: str) -> str:
    """Approval key: bound to the migration file's path and the statement's normalized text."""
    digest = hashlib.sha256(f"{path}\0{normalize_statement(sql)}".encode("utf-8", "replace"))
    return digest.hexdigest()[:32]
