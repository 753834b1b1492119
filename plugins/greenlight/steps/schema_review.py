"""The verify build's schema gate: ``greenlight schema check`` on the worker, judged here.

A thin adapter: the worker runs the CLI on the migrations changed in base..head (no base = the
first push = every migration), writing the JSON contract to a file; the step reads it back,
adds the engine's text rendering and the JSON report as logs (the report also as build data), sets ``schema_findings`` (the flagged findings, JSON
list) and ``schema_needs_review``, and fails with "needs schema review: N statement(s)" while
an unapproved finding remains.
"""
from __future__ import annotations

from dataclasses import fields

from buildbot.process import results
from schema_review.model import Finding
from schema_review.render import render_text
from schema_review.review import Report

from greenlight.steps.base import pushed_base
from greenlight.steps.cli_report import CliReportStep

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


def engine_report(report: dict) -> Report:
    """The engine's Report again from its JSON contract, so the text log is the engine's own
    rendering (``schema_review.render.render_text``), the same text the CLI prints."""
    names = {f.name for f in fields(Finding)}
    findings = [Finding(**{k: v for k, v in f.items() if k in names}) for f in report["findings"]]
    return Report(report["dialect"], report["server_version"], report["settings"], findings,
                  list(report["files"]), report["summary"]["statements"])


class SchemaReview(CliReportStep):
    """Fail fast when a changed migration would lock/rebuild a large table or break the
    release still running during the canary, until a reviewer approves it.

    ``sizes``: sizes file path in the checkout; ``db_url``: live database URL (alternative);
    ``approvals_url``: approvals database URL or SQLite path reachable from the worker.
    The whole report is build data ``greenlight-schema``; the flagged findings are also the
    ``schema_findings`` property the approvals page and incident reports read.
    """

    name = "schema review"
    report_file = JSON_FILE
    build_data = "greenlight-schema"
    renderables = ["migrations_dir", "dialect", "sizes", "db_url", "approvals_url",
                   "base_property", "server_version"]

    def __init__(self, migrations_dir: str = "migrations", dialect: str = "mysql",
                 sizes: str | None = None, approvals_url: str | None = None,
                 base_property: str = "greenlight_base", db_url: str | None = None,
                 server_version: str | None = None, large_rows: int | None = None,
                 large_bytes: int | None = None, **kwargs):
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

    async def run(self):
        head = self.getProperty("got_revision") or self.getProperty("revision")
        if not isinstance(head, str) or not head:
            self.summarize("schema review: no revision to review (got_revision unset)")
            return results.FAILURE
        base = self.getProperty(self.base_property)
        owners = self.getProperty("owners")  # Buildbot's change authors, e.g. ["Ada <a@x>"]
        author = self.getProperty("owner") or (owners[0] if isinstance(owners, list) and owners
                                               else None)
        repo = self.getProperty("repository") or None
        cmd = await self.run_cli(check_arguments(
            self.migrations_dir, self.dialect, base if isinstance(base, str) else None, head,
            self.sizes, self.db_url, self.approvals_url, self.server_version, self.large_rows,
            self.large_bytes, repo if isinstance(repo, str) else None,
            author if isinstance(author, str) else None))
        report = await self.read_report(cmd)
        if report is None:
            return results.FAILURE
        flagged = [f for f in report["findings"] if f["verdict"] == "review"]
        needs_review = bool(report["summary"]["statements_needing_review"])
        self.setProperty("schema_findings", flagged, self.name)
        self.setProperty("schema_needs_review", needs_review, self.name)
        await self.addCompleteLog("schema review", render_text(engine_report(report)))
        await self.keep_report(report)
        self.summarize(summary_of(report))
        return results.FAILURE if needs_review else cmd.results()
