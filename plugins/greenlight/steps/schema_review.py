"""The verify build's schema gate: ``greenlight schema check`` on the worker, judged here.

A thin adapter: the worker runs the CLI on the migrations changed in base..head (no base = the
first push = every migration), writing the JSON contract to a file; the step reads it back,
adds the text and JSON reports as logs, sets ``schema_findings`` (the flagged findings, JSON
list) and ``schema_needs_review``, and fails with "needs schema review: N statement(s)" while
an unapproved finding remains.
"""
from __future__ import annotations

import json

from buildbot.process import buildstep, results
from buildbot.steps.worker import CompositeStepMixin

from greenlight.steps.base import pushed_base

JSON_FILE = "greenlight-schema.json"


def check_arguments(migrations_dir: str, dialect: str, base: str | None, head: str,
                    sizes: str | None = None, db_url: str | None = None,
                    approvals_url: str | None = None, server_version: str | None = None,
                    large_rows: int | None = None, large_bytes: int | None = None,
                    repo: str | None = None, author: str | None = None) -> list[str]:
    """CLI arguments for one run (pure, so the command line is testable without a worker)."""
    args = ["schema", "check", migrations_dir, "--dialect", dialect, "--format", "json",
            "--output", JSON_FILE, "--head", head, "--commit", head,
            "--changed-since", pushed_base(base) or ""]
    for flag, value in (("--sizes", sizes), ("--db-url", db_url),
                        ("--approvals", approvals_url), ("--server-version", server_version),
                        ("--large-rows", large_rows), ("--large-bytes", large_bytes),
                        ("--repo", repo), ("--author", author)):
        if value not in (None, ""):
            args += [flag, str(value)]
    return args


def summary_of(report: dict) -> str:
    count = report["summary"]["statements_needing_review"]
    if count:
        return f"needs schema review: {count} statement(s)"
    approved = report["summary"]["approved"]
    files = report["summary"]["files"]
    text = f"schema review: {files} migration file(s) safe"
    return text + (f" ({approved} approved)" if approved else "")


def text_report(report: dict) -> str:
    lines = []
    for f in report["findings"]:
        if f["verdict"] != "review":
            continue
        state = "approved" if not f["needs_review"] else f"needs review ({f['danger']})"
        lines.append(f"{f['file']}:{f['line']}: {state} [{f['rule']}] {f['statement'][:200]}")
        lines.extend(f"    - {r}" for r in f["reasons"])
        if f["alternative"] and f["needs_review"]:
            lines.append("    safe alternative:")
            lines.extend("      " + a for a in f["alternative"].splitlines())
            lines.append(f"    key: {f['key']}")
    lines.append(summary_of(report))
    return "\n".join(lines) + "\n"


class SchemaReview(buildstep.ShellMixin, CompositeStepMixin, buildstep.BuildStep):
    """Fail fast when a changed migration would lock/rebuild a large table or break the
    release still running during the canary, until a reviewer approves it.

    ``sizes``: sizes file path in the checkout; ``db_url``: live database URL (alternative);
    ``approvals_url``: approvals database URL or SQLite path reachable from the worker.
    """

    name = "schema review"
    renderables = ["migrations_dir", "dialect", "sizes", "db_url", "approvals_url",
                   "base_property", "server_version"]

    def __init__(self, migrations_dir: str = "migrations", dialect: str = "mysql",
                 sizes: str | None = None, approvals_url: str | None = None,
                 base_property: str = "greenlight_base", db_url: str | None = None,
                 server_version: str | None = None, large_rows: int | None = None,
                 large_bytes: int | None = None,
                 greenlight: list[str] | tuple[str, ...] = ("greenlight",), **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)
        self.migrations_dir = migrations_dir
        self.dialect = dialect
        self.sizes = sizes
        self.db_url = db_url
        self.approvals_url = approvals_url
        self.base_property = base_property
        self.server_version = server_version
        self.large_rows = large_rows
        self.large_bytes = large_bytes
        self.greenlight = list(greenlight)
        self._summary: str | None = None

    async def run(self):
        head = self.getProperty("got_revision") or self.getProperty("revision")
        if not isinstance(head, str) or not head:
            self._summary = "schema review: no revision to review (got_revision unset)"
            return results.FAILURE
        base = self.getProperty(self.base_property)
        owners = self.getProperty("owners")  # Buildbot's change authors, e.g. ["Ada <a@x>"]
        author = self.getProperty("owner") or (owners[0] if isinstance(owners, list) and owners
                                               else None)
        repo = self.getProperty("repository") or None
        args = check_arguments(self.migrations_dir, self.dialect,
                               base if isinstance(base, str) else None, head, self.sizes,
                               self.db_url, self.approvals_url, self.server_version,
                               self.large_rows, self.large_bytes,
                               repo if isinstance(repo, str) else None,
                               author if isinstance(author, str) else None)
        cmd = await self.makeRemoteShellCommand(command=[*self.greenlight, *args],
                                                collectStderr=True)
        await self.runCommand(cmd)
        if cmd.rc not in (0, 1):
            reason = (cmd.stderr or "").strip().splitlines()
            self._summary = f"schema review: bad input: {reason[-1] if reason else cmd.rc}"
            return results.FAILURE
        try:
            report = json.loads(await self.getFileContentFromWorker(JSON_FILE))
        except (ValueError, TypeError):
            self._summary = f"schema review: unreadable report {JSON_FILE}"
            return results.FAILURE
        flagged = [f for f in report["findings"] if f["verdict"] == "review"]
        needs_review = bool(report["summary"]["statements_needing_review"])
        self.setProperty("schema_findings", flagged, self.name)
        self.setProperty("schema_needs_review", needs_review, self.name)
        await self.addCompleteLog("schema review", text_report(report))
        await self.addCompleteLog("report.json", json.dumps(report, indent=2))
        self._summary = summary_of(report)
        return results.FAILURE if needs_review or cmd.rc != 0 else results.SUCCESS

    def getResultSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getResultSummary()
