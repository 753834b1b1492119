"""The data that flows through schema review: operations parsed from statements, column
definitions, table sizes, server versions and the findings handed to renderers and approvals.

Kept free of parser types so rules, context and renderers do not depend on sqlglot or pglast.
"""
from __future__ import annotations

import re

from greenlight.errors import UsageError

# SHA-256 from Python's own small module: hashlib would set up every OpenSSL digest, and even
# loading OpenSSL's libcrypto cost more at each CLI start than these few hundred KB of hashing.
try:
    from _sha256 import sha256 as _sha256  # Python <= 3.11
except ImportError:  # pragma: no cover - renamed in 3.12
    try:
        from _sha2 import sha256 as _sha256
    except ImportError:
        from hashlib import sha256 as _sha256

DEFAULT_VERSIONS = {"mysql": "8.0.35", "mariadb": "10.11", "postgres": "15"}


class Record:
    """Base of the plain data classes here and in review/split: what ``@dataclass`` gave them
    (``__init__`` by hand in each, equality, repr; ``frozen`` ones hashable and read-only),
    written out because importing ``dataclasses`` (and ``inspect``, which it imports) and
    compiling each class's generated methods was a tenth of a CLI review's CPU."""

    _fields: tuple[str, ...] = ()
    _frozen = False

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment] - mutable records are not hashable

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({values})"


class FrozenRecord(Record):
    """A read-only record: assigning a field raises AttributeError, equal ones hash alike."""

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())


class ServerVersion(FrozenRecord):
    """Flavour (mysql, mariadb, postgres) and numeric version, e.g. mariadb 10.11.6."""

    _fields = ("flavour", "numbers")

    def __init__(self, flavour: str, numbers: tuple[int, int, int]):
        object.__setattr__(self, "flavour", flavour)
        object.__setattr__(self, "numbers", numbers)

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


class ColumnInfo(Record):
    """What we know of a column's definition: enough to judge MODIFY and type changes."""

    _fields = ("name", "type", "params", "nullable", "has_default", "charset_bytes", "unsigned",
               "auto_increment")

    def __init__(self, name: str,
                 type: str,  # lower-case base type name: varchar, int, enum, text ...
                 params: tuple = (),  # (length,) or (precision, scale) or enum members
                 nullable: bool = True, has_default: bool = False,
                 charset_bytes: int | None = None,  # bytes per character (MySQL), when known
                 unsigned: bool = False,
                 auto_increment: bool = False):  # MySQL: AUTO_INCREMENT copies the table
        self.name = name
        self.type = type
        self.params = params
        self.nullable = nullable
        self.has_default = has_default
        self.charset_bytes = charset_bytes
        self.unsigned = unsigned
        self.auto_increment = auto_increment

    def render(self) -> str:
        params = f"({', '.join(map(str, self.params))})" if self.params else ""
        return f"{self.type}{params}{'' if self.nullable else ' NOT NULL'}"


class Operation(Record):
    """One thing a statement does to the schema (an ALTER TABLE may carry several)."""

    _fields = ("kind", "table", "attrs")

    def __init__(self, kind: str, table: str | None = None, attrs: dict | None = None):
        self.kind = kind
        self.table = table
        self.attrs = {} if attrs is None else attrs

    def get(self, key: str, default: object = None) -> object:
        return self.attrs.get(key, default)


class ParsedStatement(Record):
    """A statement after parsing: its operations and statement-wide clauses."""

    _fields = ("operations", "algorithm", "lock", "parser")

    def __init__(self, operations: list[Operation],
                 algorithm: str | None = None,  # MySQL ALGORITHM= clause, upper-case
                 lock: str | None = None,  # MySQL LOCK= clause, upper-case
                 parser: str = ""):  # "sqlglot", "keywords", "pglast"
        self.operations = operations
        self.algorithm = algorithm
        self.lock = lock
        self.parser = parser


class TableSize(Record):
    _fields = ("rows", "bytes", "source")

    def __init__(self, rows: int | None, bytes: int | None,
                 source: str):  # "file", "live", "new" (created in this change), "unknown"
        self.rows = rows
        self.bytes = bytes
        self.source = source


class Assessment(Record):
    """What a rule says an operation does on the server, before sizes are considered."""

    _fields = ("rule", "effect", "size_dependent", "compatibility", "fails", "blocks_writes",
               "reasons", "alternative_kind")

    def __init__(self, rule: str,
                 effect: str,  # instant, nocopy, inplace, rebuild, copy, metadata, scan ...
                 size_dependent: bool = False,  # dangerous only when the table is large
                 compatibility: bool = False,  # breaks the release still running in a canary
                 fails: bool = False,  # the server will refuse or the statement errors
                 blocks_writes: bool = False, reasons: list[str] | None = None,
                 alternative_kind: str | None = None):  # key for alternatives.py
        self.rule = rule
        self.effect = effect
        self.size_dependent = size_dependent
        self.compatibility = compatibility
        self.fails = fails
        self.blocks_writes = blocks_writes
        self.reasons = [] if reasons is None else reasons
        self.alternative_kind = alternative_kind


class Finding(Record):
    """One operation of one statement, judged: the unit of the JSON contract."""

    _fields = ("file", "line", "statement", "table", "operation", "rule", "verdict", "danger",
               "effect", "blocks_writes", "reasons", "alternative", "table_size", "key",
               "approval")

    def __init__(self, file: str, line: int, statement: str, table: str | None, operation: str,
                 rule: str,
                 verdict: str,  # "safe" or "review"
                 danger: str | None,  # size, compatibility, fails, unparsed or None
                 effect: str, blocks_writes: bool, reasons: list[str], alternative: str | None,
                 table_size: dict | None, key: str,
                 approval: dict | None = None):  # {"decision", "user", "at", "comment"}
        self.file = file
        self.line = line
        self.statement = statement
        self.table = table
        self.operation = operation
        self.rule = rule
        self.verdict = verdict
        self.danger = danger
        self.effect = effect
        self.blocks_writes = blocks_writes
        self.reasons = reasons
        self.alternative = alternative
        self.table_size = table_size
        self.key = key
        self.approval = approval

    @property
    def needs_review(self) -> bool:
        return self.verdict == "review" and not (
            self.approval and self.approval.get("decision") == "approved")

    @classmethod
    def from_dict(cls, data: dict) -> "Finding":
        """A Finding again from its JSON contract (``to_dict``; derived keys such as
        ``needs_review`` are left out)."""
        return cls(**{name: data[name] for name in cls._fields if name in data})

    def to_dict(self) -> dict:
        # by hand, one literal in _fields' order: asdict deep-copied every field, and even a
        # getattr per field was a visible share of the CLI's CPU
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
    digest = _sha256(f"{path}\0{normalize_statement(sql)}".encode("utf-8", "replace"))
    return digest.hexdigest()[:32]
