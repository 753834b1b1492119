"""The engine: migration texts in, findings out.

Splits each file, parses each statement with the dialect's parser, asks the rules what the
server will do, weighs that against the table's size (a table created earlier in the change is
new and small), and attaches the safe alternative.  Pure: sizes and live column definitions come
from a ``SizeSource`` handed in; nothing here prints or touches git.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from schema_review import rules_postgres
from schema_review.alternatives import alternative_for
from schema_review.context import SchemaContext
from schema_review.model import (
    Assessment,
    Finding,
    Operation,
    ParsedStatement,
    ServerVersion,
    TableSize,
    finding_key,
)
from schema_review.estimate import estimate
from schema_review.sizes import SizesFile, SizeSource
from schema_review.split import DIALECTS, split_statements

MAX_STATEMENT_CHARS = 2000  # statements are shortened to this in findings (full text hashed)
MAX_NESTING = 4  # EXECUTE inside a procedure inside a procedure …: deeper is not followed


@dataclass
class ReviewSettings:
    """How to judge: dialect, server version, and what counts as a large table."""

    dialect: str
    server_version: str | None = None
    large_rows: int = 1_000_000
    large_bytes: int = 1 << 30
    unknown_size: str = "review"  # "review" or "safe": verdict when a table's size is unknown

    def version(self, sizes: SizeSource) -> ServerVersion:
        flavour = self.dialect
        live = sizes.server_version()
        return ServerVersion.parse(flavour, live or self.server_version)


@dataclass
class Report:
    """Every finding of one review, safe ones included, plus the settings used."""

    dialect: str
    server_version: str
    settings: dict
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    statements: int = 0

    @property
    def needs_review(self) -> list[Finding]:
        return [f for f in self.findings if f.needs_review]

    def statements_needing_review(self) -> int:
        return len({f.key for f in self.needs_review})

    @property
    def exit_code(self) -> int:
        return 1 if self.needs_review else 0

    def to_dict(self) -> dict:
        review = [f for f in self.findings if f.verdict == "review"]
        return {
            "version": 1,
            "dialect": self.dialect,
            "server_version": self.server_version,
            "settings": self.settings,
            "files": self.files,
            "summary": {
                "files": len(self.files),
                "statements": self.statements,
                "findings": len(self.findings),
                "review": len(review),
                "approved": sum(1 for f in review if not f.needs_review),
                "needs_review": len(self.needs_review),
                "statements_needing_review": self.statements_needing_review(),
            },
            "findings": [f.to_dict() for f in self.findings],
            "exit_code": self.exit_code,
        }


class Reviewer:
    """Reviews files in order, carrying context (new tables, columns, sessions) across them."""

    def __init__(self, settings: ReviewSettings, sizes: SizeSource | None = None):
        if settings.dialect not in DIALECTS:
            from greenlight.errors import UsageError

            raise UsageError(f"unknown dialect {settings.dialect!r}: use one of "
                             f"{', '.join(DIALECTS)}")
        self.settings = settings
        # each dialect imports only its own parser and rules (sqlglot alone costs 0.2 s of CPU
        # at start; MySQL's rules and dynamic-SQL folding compile regexes a PostgreSQL run
        # never uses)
        if settings.dialect == "postgres":
            from schema_review.parse_postgres import parse_postgres as parse
        else:
            from schema_review import rules_mysql
            from schema_review.parse_mysql import parse_mysql as parse

            self._rules_mysql = rules_mysql
        self._parse = parse
        self.sizes = sizes or SizeSource()
        if isinstance(self.sizes, SizesFile):
            self.sizes.dialect = settings.dialect
        self.version = settings.version(self.sizes)
        self.context = SchemaContext(self.sizes.column)
        self.report = Report(settings.dialect, str(self.version), {
            "large_rows": settings.large_rows, "large_bytes": settings.large_bytes,
            "unknown_size": settings.unknown_size})

    def review_text(self, path: str, text: str) -> list[Finding]:
        """Review one migration file's text; findings are also added to ``self.report``."""
        self.context.begin_file()
        self.report.files.append(path)
        found: list[Finding] = []
        statements = split_statements(text, self.settings.dialect, self.version.numbers, path)
        for statement in statements:
            self.report.statements += 1
            found.extend(self._review_statement(statement.sql, statement.line, path))
        self.report.findings.extend(found)
        return found

    def review_statements(self, statements: list[tuple[str, int, str]]) -> list[Finding]:
        """Review already-split (file, line, sql) statements as ONE session (e.g. Alembic's
        offline SQL, where many revision files share one transaction); files are recorded in
        first-seen order."""
        self.context.begin_file()
        found: list[Finding] = []
        for path, line, sql in statements:
            if path not in self.report.files:
                self.report.files.append(path)
            self.report.statements += 1
            found.extend(self._review_statement(sql, line, path))
        self.report.findings.extend(found)
        return found

    def _review_statement(self, sql: str, line: int, path: str, depth: int = 0,
                          note: str | None = None) -> list[Finding]:
        parsed = self._parse(sql)
        nested: list[Finding] = []
        operations = []
        for op in parsed.operations:
            found = self._dynamic(op, line, path, depth)
            if isinstance(found, Operation):
                operations.append(found)
            else:
                nested.extend(found)
        parsed.operations = operations
        used = self._enum_values_used(sql)
        if used:
            operations.append(Operation("enum_value_used_in_transaction", None,
                                        {"values": used}))
        findings = self._assess(parsed, sql, line, path)
        if note:
            for finding in findings:
                finding.reasons.insert(0, note)
        return findings + nested

    def _enum_values_used(self, sql: str) -> list[str]:
        """Enum labels added by ALTER TYPE … ADD VALUE earlier in the open transaction that
        this statement spells as a literal: PostgreSQL refuses them until the commit."""
        values = self.context.enum_values_in_tx
        if not values or "alter type" in sql[:40].lower():
            return []
        return sorted(v for v in values if "'" + v.replace("'", "''") + "'" in sql)

    def _dynamic(self, op: Operation, line: int, path: str, depth: int
                 ) -> Operation | list[Finding]:
        """SQL built or stored by the migration and run later: remember what SET/PREPARE and
        CREATE PROCEDURE/FUNCTION define, and review it where EXECUTE/CALL/SELECT f() runs it
        (a list of findings), or say it cannot be read (an unparsed operation)."""
        ctx, k = self.context, op.kind
        if k == "set_variable":
            from schema_review.dynamic import fold_mysql

            ctx.variables[op.get("name")] = fold_mysql(op.get("expr"), ctx.variables)
            return Operation("other", None, {"what": "SET " + op.get("name")})
        if k == "prepare":
            source = op.get("source")
            if source:
                texts, origin = ctx.variables.get(source), f"from {source}"
            else:
                from schema_review.dynamic import fold_mysql

                expr = op.get("expr")
                texts = fold_mysql(expr, ctx.variables) if expr is not None else None
                origin = "from an expression"
            ctx.prepared[op.get("name")] = (texts, origin)
            return Operation("other", None, {"what": "PREPARE"})
        if k == "execute":
            name = op.get("name")
            texts, origin = ctx.prepared.get(name, (None, "not prepared in this file"))
            if texts is None:
                return Operation("unparsed", None, {"reason": f"EXECUTE {name} runs SQL built "
                                                    f"at run time ({origin}): its statement "
                                                    "cannot be read"})
            return self._run_nested([t for t in texts if t.strip()], line, path, depth,
                                    f"run by EXECUTE {name} (prepared {origin})")
        if k == "define_routine":
            ctx.routines[op.get("name")] = op.attrs
            return Operation("other", None, {"what": f"CREATE PROCEDURE/FUNCTION "
                                             f"{op.get('name')} (its body is reviewed where "
                                             "this change calls it)"})
        if k == "drop_routine":
            ctx.routines.pop(op.get("name"), None)
            return Operation("other", None, {"what": "DROP FUNCTION/PROCEDURE"})
        if k == "call":
            found: list[Finding] = []
            for name in op.get("names") or []:
                routine = ctx.routines.get(name)
                if routine is None:
                    if op.get("only_known"):
                        continue  # SELECT of an ordinary function
                    return Operation("unparsed", None, {"reason": f"CALL {name}: a procedure "
                                                        "not defined in this change, its "
                                                        "statements cannot be read"})
                note = f"in {name}(), called here"
                found.extend(self._run_nested(self._routine_statements(routine), line, path,
                                              depth, note))
                for reason in routine.get("unknown") or []:
                    found.extend(self._judge_all(Operation("unparsed", None, {
                        "reason": f"{name}(): {reason}"}), line, path, f"CALL {name}"))
            return found or Operation("other", None, {"what": "SELECT"})
        return op

    def _routine_statements(self, routine: dict) -> list[str]:
        if "statements" in routine:
            return list(routine["statements"])
        from schema_review.dynamic import strip_control

        body = split_statements(routine.get("body") or "", self.settings.dialect,
                                self.version.numbers)
        return [text for text in (strip_control(s.sql) for s in body) if text]

    def _run_nested(self, texts: list[str], line: int, path: str, depth: int,
                    note: str) -> list[Finding]:
        if depth >= MAX_NESTING:
            return self._judge_all(Operation("unparsed", None, {
                "reason": f"{note}: nested too deeply to follow"}), line, path, note)
        found: list[Finding] = []
        for text in texts:
            found.extend(self._review_statement(text.strip().rstrip(";"), line, path,
                                                depth + 1, note))
        return found

    def _judge_all(self, op: Operation, line: int, path: str, sql: str) -> list[Finding]:
        return self._assess(ParsedStatement([op]), sql, line, path)

    def _assess(self, parsed: ParsedStatement, sql: str, line: int, path: str
                ) -> list[Finding]:
        results: list[Assessment] = []
        for op in parsed.operations:
            if op.kind == "drop_index" and not op.table:
                op.table = self.context.index_table(op.get("name")) or \
                    self.sizes.index_table(op.get("name"))
            if op.kind == "unparsed":
                results.append(Assessment("unparsed", "unknown", reasons=[
                    f"unparsed: needs review — {op.get('reason')}"]))
            elif self.settings.dialect == "postgres":
                results.append(rules_postgres.assess_postgres(op, self.context, self.version))
            else:
                results.append(self._rules_mysql.assess_mysql(op, parsed, self.context,
                                                              self.version))
        if self.settings.dialect != "postgres":
            self._rules_mysql.apply_statement_clauses(parsed, results, self.context,
                                                      self.version)
        key = finding_key(path, sql)
        findings = []
        for op, assessment in zip(parsed.operations, results):
            findings.append(self._judge(op, assessment, sql, line, path, key))
        for op in parsed.operations:
            self.context.learn(op)
        return findings

    def table_size(self, table: str | None) -> TableSize:
        if not table:
            return TableSize(None, None, "unknown")
        name = table.strip('`"').split(".")[-1]
        if self.context.is_new(table):
            if self.context.created_if_not_exists & {name.lower()}:
                known = self.sizes.size(name)  # IF NOT EXISTS on an existing table: no-op
                if known.source != "unknown" and (known.rows or known.bytes):
                    return known
            return TableSize(0, 0, "new")
        return self.sizes.size(name)

    def is_large(self, size: TableSize) -> bool | None:
        """True/False when known; None when the size is unknown."""
        if size.source == "new":
            return False
        if size.bytes is not None and size.bytes >= self.settings.large_bytes:
            return True
        if size.rows is None:
            return None  # bytes alone cannot clear a table: wide rows or not, count unknown
        return size.rows >= self.settings.large_rows

    def _judge(self, op: Operation, a: Assessment, sql: str, line: int, path: str,
               key: str) -> Finding:
        size = self.table_size(op.table)
        reasons = list(a.reasons)
        danger = None
        if a.rule == "unparsed":
            danger = "unparsed"
        elif a.fails:
            danger = "fails"
        elif a.compatibility:
            danger = "compatibility"
        elif a.size_dependent:
            large = self.is_large(size)
            if large is None:
                if self.settings.unknown_size == "review":
                    danger = "size"
                    if size.bytes is not None:
                        reasons.append(f"the row count of {op.table} is unknown "
                                       f"({_describe(size)}): treated as large")
                    else:
                        reasons.append(f"the size of {op.table or 'the table'} is unknown "
                                       "(no sizes entry, no database URL): treated as large")
            elif large:
                danger = "size"
                expected = estimate(size, a.effect, self.settings.dialect,
                                    self.sizes.read_rate(op.table))
                reasons.append(f"{op.table} is large: {_describe(size)}"
                               + (f" — {expected}" if expected else ""))
            else:
                reasons.append(f"{op.table} is small ({_describe(size)}): acceptable")
        verdict = "review" if danger else "safe"
        alternative = None
        if verdict == "review":
            alternative = alternative_for(a.alternative_kind, self.settings.dialect, op, sql,
                                          op.table)
        shown = sql if len(sql) <= MAX_STATEMENT_CHARS else sql[:MAX_STATEMENT_CHARS] + " …"
        return Finding(
            file=path, line=line, statement=shown, table=op.table, operation=op.kind,
            rule=a.rule, verdict=verdict, danger=danger, effect=a.effect,
            blocks_writes=a.blocks_writes, reasons=reasons, alternative=alternative,
            table_size={"rows": size.rows, "bytes": size.bytes, "source": size.source},
            key=key)


def _describe(size: TableSize) -> str:
    if size.source == "new":
        return "created in this change"
    parts = []
    if size.rows is not None:
        parts.append(f"~{size.rows:,} rows")
    if size.bytes is not None:
        parts.append(f"{size.bytes / (1 << 20):,.0f} MiB")
    return ", ".join(parts) + f" ({size.source})"


def review_texts(sources: list[tuple[str, str]], settings: ReviewSettings,
                 sizes: SizeSource | None = None) -> Report:
    """Review (path, text) pairs in order and return the report."""
    reviewer = Reviewer(settings, sizes)
    for path, text in sources:
        reviewer.review_text(path, text)
    return reviewer.report
