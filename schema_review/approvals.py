"""The approval store: which flagged statements a reviewer approved or rejected, who, when, why.

A decision is bound to the finding key — a hash of the migration file's path and the statement's
normalized text — so editing the statement (or moving it to another file) needs a new approval.
SQLAlchemy keeps it portable: SQLite by default (path given by the caller), PostgreSQL/MySQL
when the master's database moves.  The web page and the CLI call the same three methods:
``list_pending()``, ``approve(key, user, comment)``, ``reject(key, user, comment)``.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import sqlalchemy as sa
from greenlight.db import create_tables, open_engine
from greenlight.errors import UsageError

from schema_review.model import Finding

_metadata = sa.MetaData()
pending_table = sa.Table(
    "schema_review_pending", _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("table_name", sa.String(255)),
    sa.Column("details", sa.Text, nullable=False),  # JSON: operations, reasons, alternatives
    sa.Column("repo", sa.Text),
    sa.Column("commit_sha", sa.String(64)),
    sa.Column("author", sa.Text),
    sa.Column("first_seen", sa.String(32), nullable=False),
    sa.Column("last_seen", sa.String(32), nullable=False),
)
decisions_table = sa.Table(
    "schema_review_decisions", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def store_url(value: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (SQLite)."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


class ApprovalStore:
    """Pending findings and reviewers' decisions, in one database."""

    def __init__(self, url: str):
        self.url = store_url(url)
        self.engine = open_engine(self.url, what="approvals database")
        create_tables(_metadata, self.engine, what="approvals database")

    # --- written by the check -------------------------------------------------------------
    def record_pending(self, findings: list[Finding], repo: str | None = None,
                       commit: str | None = None, author: str | None = None) -> int:
        """Store each statement that needs review (one row per key); returns how many."""
        by_key: dict[str, list[Finding]] = {}
        for finding in findings:
            if finding.verdict == "review":
                by_key.setdefault(finding.key, []).append(finding)
        now = _now()
        with self.engine.begin() as conn:
            for key, group in by_key.items():
                first = group[0]
                details = json.dumps([{
                    "operation": f.operation, "rule": f.rule, "danger": f.danger,
                    "effect": f.effect, "reasons": f.reasons, "alternative": f.alternative,
                    "table": f.table, "table_size": f.table_size} for f in group])
                values = dict(path=first.file, line=first.line, statement=first.statement,
                              table_name=first.table, details=details, repo=repo,
                              commit_sha=commit, author=author, last_seen=now)
                exists = conn.execute(sa.select(pending_table.c.key).where(
                    pending_table.c.key == key)).first()
                if exists:
                    conn.execute(pending_table.update().where(pending_table.c.key == key)
                                 .values(**values))
                else:
                    conn.execute(pending_table.insert().values(key=key, first_seen=now,
                                                               **values))
        return len(by_key)

    def annotate(self, findings: list[Finding]) -> None:
        """Attach the latest decision (if any) to each finding."""
        keys = {f.key for f in findings if f.verdict == "review"}
        decisions = {key: self.decision(key) for key in keys}
        for finding in findings:
            decision = decisions.get(finding.key)
            if decision is not None:
                finding.approval = decision

    # --- read and written by reviewers ------------------------------------------------------
    def decision(self, key: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(decisions_table).where(decisions_table.c.key == key)
                               .order_by(decisions_table.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        return {"decision": row["decision"], "user": row["user"], "at": row["at"],
                "comment": row["comment"]}

    def list_pending(self, include_decided: bool = False) -> list[dict]:
        """Flagged statements, newest first; by default only those without an approval."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(pending_table).order_by(
                pending_table.c.last_seen.desc(), pending_table.c.path,
                pending_table.c.line)).mappings().all()
        result = []
        for row in rows:
            decision = self.decision(row["key"])
            if decision and decision["decision"] == "approved" and not include_decided:
                continue
            result.append({
                "key": row["key"], "file": row["path"], "line": row["line"],
                "statement": row["statement"], "table": row["table_name"],
                "findings": json.loads(row["details"]), "repo": row["repo"],
                "commit": row["commit_sha"], "author": row["author"],
                "first_seen": row["first_seen"], "last_seen": row["last_seen"],
                "decision": decision,
            })
        return result

    def approve(self, finding_key: str, user: str, comment: str = "") -> dict:
        return self._decide(finding_key, "approved", user, comment)

    def reject(self, finding_key: str, user: str, comment: str = "") -> dict:
        return self._decide(finding_key, "rejected", user, comment)

    def _decide(self, key: str, decision: str, user: str, comment: str) -> dict:
        if not user or not user.strip():
            raise UsageError("a decision needs the reviewer's name (--user)")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(pending_table).where(
                pending_table.c.key == key)).mappings().first()
            if row is None:
                raise UsageError(f"no flagged statement with key {key!r}: run `greenlight schema "
                                 "pending` to list the keys")
            at = _now()
            conn.execute(decisions_table.insert().values(
                key=key, path=row["path"], statement=row["statement"], decision=decision,
                user=user.strip(), at=at, comment=comment or ""))
        return {"key": key, "decision": decision, "user": user.strip(), "at": at,
                "comment": comment or "", "commit": row["commit_sha"], "repo": row["repo"]}
