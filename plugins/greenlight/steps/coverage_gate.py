"""The verify build's coverage gate: ``greenlight coverage`` on the worker, judged on the master.

A thin adapter: the worker runs the CLI on the pushed range (``greenlight_base``..got_revision;
no base = first push = the whole tree) and writes the JSON contract plus Markdown and HTML
reports; the step reads them back, sets properties, adds logs and fails under the threshold with
a summary naming the worst file.
"""
from __future__ import annotations

import json
import re
from typing import ClassVar

from buildbot.interfaces import IRenderable
from buildbot.process import buildstep, results
from buildbot.steps.worker import CompositeStepMixin
from buildbot.util import ComparableMixin
from zope.interface import implementer

ZERO = re.compile(r"^0*$")
JSON_FILE = "greenlight-coverage.json"
MARKDOWN_FILE = "greenlight-coverage.md"
HTML_FILE = "greenlight-coverage.html"
PREPARED_FILE = ".greenlight-coverage-prepared.json"


def gate_arguments(base: str | None, head: str, data: str, fail_under: float,
                   extensions: list[str] | tuple[str, ...] = (), combine: bool = True,
                   prepared: str | None = None) -> list[str]:
    """CLI arguments for one run (pure, so the command line is testable without a worker)."""
    args = ["coverage", "--head", head, "--data", data, "--fail-under", f"{fail_under:g}",
            "--format", "json", "--output", JSON_FILE, "--also-markdown", MARKDOWN_FILE,
            "--also-html", HTML_FILE]
    for ext in extensions:
        args += ["--ext", ext]
    if combine:
        args.append("--combine")
    if prepared:
        args += ["--prepared", prepared]
    if base and not ZERO.match(base):
        args[1:1] = ["--base", base]
    return args


def prepare_arguments(base: str | None, head: str, test_command: list[str],
                      extensions: list[str] | tuple[str, ...] = (),
                      output: str = PREPARED_FILE) -> list[str]:
    """``greenlight coverage prepare`` arguments that start ``test_command`` first and prepare
    the gate's static half while it runs (its exit status is the tests' status)."""
    args = ["coverage", "prepare", "--head", head, "--output", output]
    if base and not ZERO.match(base):
        args[2:2] = ["--base", base]
    for ext in extensions:
        args += ["--ext", ext]
    return [*args, "--run", *test_command]


@implementer(IRenderable)
class PrepareAlongside(ComparableMixin):
    """The test step's command, rendered per build: the tests run under ``greenlight coverage
    prepare --run`` so the gate's analysis of the changed code is done by the time they end.
    Without a revision to prepare, just the tests."""

    compare_attrs: ClassVar = ("test_command", "greenlight", "base_property", "extensions",
                               "output")

    def __init__(self, test_command: list[str], greenlight: list[str] | tuple[str, ...] = (
            "greenlight",), base_property: str = "greenlight_base",
            extensions: list[str] | tuple[str, ...] = (), output: str = PREPARED_FILE):
        self.test_command = list(test_command)
        self.greenlight = list(greenlight)
        self.base_property = base_property
        self.extensions = tuple(extensions)
        self.output = output

    def getRenderingFor(self, props):
        head = props.getProperty("got_revision") or props.getProperty("revision")
        if not isinstance(head, str) or not head:
            return list(self.test_command)
        base = props.getProperty(self.base_property)
        return [*self.greenlight, *prepare_arguments(base if isinstance(base, str) else None,
                                                     head, self.test_command, self.extensions,
                                                     self.output)]


def summary_of(report: dict) -> str:
    totals = report["totals"]
    if not totals["total_units"]:
        return "coverage: no new executable lines"
    text = (f"coverage of new code {totals['percent']:.2f}% "
            f"({totals['covered_statements']}/{totals['new_statements']} lines")
    if totals["branches"]:
        text += f", {totals['covered_branches']}/{totals['branches']} branches"
    text += ")"
    if not report["passed"]:
        text += f" < {report['fail_under']:g}%"
        if report.get("worst_file"):
            worst = next(f for f in report["files"] if f["path"] == report["worst_file"])
            text += f"; worst {worst['path']} {worst['percent']:.2f}%"
    return text


class CoverageGate(buildstep.ShellMixin, CompositeStepMixin, buildstep.BuildStep):
    """Fail the build when the pushed lines are covered under ``fail_under`` percent.

    ``greenlight``: the argv that runs the greenlight CLI on the worker (default the console
    script on PATH; e.g. ``["/srv/venv/bin/greenlight"]``). ``extensions``: file endings
    to check (default: ``.py`` only; e.g. ``[".py", ".pyx"]``). ``combine``: fold the
    parallel data files of ``pytest -n`` (``.coverage.*``) into ``data`` first.
    ``prepared``: the file ``PrepareAlongside`` had written while the tests ran (the CLI
    recomputes, and says so in the log, when it is missing or does not match).
    """

    name = "coverage"
    renderables: ClassVar[list[str]] = ["base_property", "fail_under", "data"]

    def __init__(self, base_property: str = "greenlight_base", fail_under: float = 100.0,
                 data: str = ".coverage", greenlight: list[str] | tuple[str, ...] = ("greenlight",),
                 extensions: list[str] | tuple[str, ...] = (), combine: bool = True,
                 prepared: str | None = None, **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)
        self.base_property = base_property
        self.fail_under = fail_under
        self.data = data
        self.greenlight = list(greenlight)
        self.extensions = tuple(extensions)
        self.combine = combine
        self.prepared = prepared
        self._summary: str | None = None

    async def run(self):
        head = self.getProperty("got_revision") or self.getProperty("revision")
        if not isinstance(head, str) or not head:
            self._summary = "coverage: no revision to measure (got_revision unset)"
            return results.FAILURE
        base = self.getProperty(self.base_property)
        args = gate_arguments(base if isinstance(base, str) else None, head, self.data,
                              float(self.fail_under), self.extensions, self.combine,
                              self.prepared)
        cmd = await self.makeRemoteShellCommand(command=[*self.greenlight, *args],
                                                collectStderr=True)
        await self.runCommand(cmd)
        if cmd.rc not in (0, 1):
            reason = (cmd.stderr or "").strip().splitlines()
            self._summary = f"coverage: bad input: {reason[-1] if reason else f'exit {cmd.rc}'}"
            return results.FAILURE
        try:
            report = json.loads(await self.getFileContentFromWorker(JSON_FILE))
        except (ValueError, TypeError):
            self._summary = f"coverage: unreadable report {JSON_FILE}"
            return results.FAILURE
        totals = report["totals"]
        self.setProperty("coverage_new_lines", totals["new_statements"], self.name)
        self.setProperty("coverage_covered", totals["covered_statements"], self.name)
        self.setProperty("coverage_percent", totals["percent"], self.name)
        self.setProperty("coverage_passed", bool(report["passed"]), self.name)
        for log, name in (("report.md", MARKDOWN_FILE), ("report.json", None)):
            text = json.dumps(report, indent=2) if name is None else \
                await self.getFileContentFromWorker(name, abandonOnFailure=False)
            if text:
                await self.addCompleteLog(log, text)
        html = await self.getFileContentFromWorker(HTML_FILE, abandonOnFailure=False)
        if html:
            await self.addHTMLLog("coverage.html", html)
        self._summary = summary_of(report)
        return results.SUCCESS if report["passed"] and cmd.rc == 0 else results.FAILURE

    def getResultSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getResultSummary()
