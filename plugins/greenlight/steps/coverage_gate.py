"""The verify build's coverage gate: ``greenlight coverage`` on the worker, judged on the master.

A thin adapter: the worker runs the CLI on the pushed range (``greenlight_base``..got_revision;
no base = first push = the whole tree) and writes the JSON contract plus Markdown and HTML
reports; the step reads them back, sets properties, adds logs and fails under the threshold with
the report's summary (which names the worst file).
"""
from __future__ import annotations

import json
from typing import ClassVar

from buildbot.interfaces import IRenderable
from buildbot.process import results
from buildbot.util import ComparableMixin
from zope.interface import implementer

from greenlight.steps.base import pushed_base
from greenlight.steps.cli_report import CliReportStep

JSON_FILE = "greenlight-coverage.json"
MARKDOWN_FILE = "greenlight-coverage.md"
HTML_FILE = "greenlight-coverage.html"


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
    if pushed_base(base):
        args[1:1] = ["--base", base]
    return args


def gated_test_arguments(base: str | None, head: str, test_command: list[str], data: str,
                         fail_under: float, extensions: list[str] | tuple[str, ...] = ()
                         ) -> list[str]:
    """``greenlight coverage ... --tests-status --run TESTS``: the tests run under the gate,
    which prepares its analysis while they run and writes the reports the moment they end;
    the exit status stays the tests' (the coverage step judges the reports)."""
    return [*gate_arguments(base, head, data, fail_under, extensions, combine=True),
            "--tests-status", "--run", *test_command]


@implementer(IRenderable)
class GatedTests(ComparableMixin):
    """The test step's command, rendered per build: the tests run under ``greenlight coverage
    --run``, so the gate's analysis of the changed code is prepared while they run and its
    reports (``output``, the JSON contract, plus Markdown and HTML) are written as soon as they
    end; the coverage step then only reads them. Without a revision, just the tests."""

    compare_attrs: ClassVar = ("test_command", "greenlight", "base_property", "extensions",
                               "data", "fail_under")
    output = JSON_FILE

    def __init__(self, test_command: list[str], greenlight: list[str] | tuple[str, ...] = (
            "greenlight",), base_property: str = "greenlight_base",
            extensions: list[str] | tuple[str, ...] = (), data: str = ".coverage",
            fail_under: float = 100.0):
        self.test_command = list(test_command)
        self.greenlight = list(greenlight)
        self.base_property = base_property
        self.extensions = tuple(extensions)
        self.data = data
        self.fail_under = float(fail_under)

    def getRenderingFor(self, props):
        head = props.getProperty("got_revision") or props.getProperty("revision")
        if not isinstance(head, str) or not head:
            return list(self.test_command)
        base = props.getProperty(self.base_property)
        return [*self.greenlight, *gated_test_arguments(
            base if isinstance(base, str) else None, head, self.test_command, self.data,
            self.fail_under, self.extensions)]


class CoverageGate(CliReportStep):
    """Fail the build when the pushed lines are covered under ``fail_under`` percent.

    ``extensions``: file endings to check (default: ``.py`` only; e.g. ``[".py", ".pyx"]``).
    ``combine``: fold the parallel data files of ``pytest -n`` (``.coverage.*``) into ``data``
    first. ``tests_report``: the JSON report the test step wrote when its tests ran under the
    gate (``GatedTests``); used when it describes this build's range and threshold, else the
    CLI runs here. ``prepared``: a file of ``greenlight coverage prepare`` for the CLI. Both
    renderable: a verify build that may fan out has them only when it ran the tests itself.
    The summary is the report's own ``summary`` line; the whole report is build data
    ``greenlight-coverage``.
    """

    name = "coverage"
    report_file = JSON_FILE
    build_data = "greenlight-coverage"
    renderables: ClassVar[list[str]] = ["base_property", "fail_under", "data", "prepared",
                                        "tests_report"]

    def __init__(self, base_property: str = "greenlight_base", fail_under: float = 100.0,
                 data: str = ".coverage", extensions: list[str] | tuple[str, ...] = (),
                 combine: bool = True, prepared: str | None = None,
                 tests_report: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.base_property = base_property
        self.fail_under = fail_under
        self.data = data
        self.extensions = tuple(extensions)
        self.combine = combine
        self.prepared = prepared
        self.tests_report = tests_report

    async def run(self):
        head = self.getProperty("got_revision") or self.getProperty("revision")
        if not isinstance(head, str) or not head:
            self.summarize("coverage: no revision to measure (got_revision unset)")
            return results.FAILURE
        base = self.getProperty(self.base_property)
        base = base if isinstance(base, str) else None
        report = await self._report_from_tests(base, head)
        if report is None:
            cmd = await self.run_cli(gate_arguments(
                base, head, self.data, float(self.fail_under), self.extensions, self.combine,
                self.prepared))
            report = await self.read_report(cmd)
            if report is None:
                return results.FAILURE
            if cmd.results() == results.FAILURE and report.get("passed"):
                report["passed"] = False   # the CLI's verdict wins over a contradicting file
        else:
            await self.addCompleteLog("how", f"the report {self.tests_report} the test step "
                                             "wrote the moment the tests ended (same range)")
        await self.show(report)
        return results.SUCCESS if report["passed"] else results.FAILURE

    async def show(self, report: dict) -> None:
        """Properties, build data, the Markdown and HTML reports, the summary."""
        totals = report["totals"]
        self.setProperty("coverage_new_lines", totals["new_statements"], self.name)
        self.setProperty("coverage_covered", totals["covered_statements"], self.name)
        self.setProperty("coverage_percent", totals["percent"], self.name)
        self.setProperty("coverage_passed", bool(report["passed"]), self.name)
        markdown = await self.getFileContentFromWorker(MARKDOWN_FILE, abandonOnFailure=False)
        if markdown:
            await self.addCompleteLog("report.md", markdown)
        await self.keep_report(report)
        html = await self.getFileContentFromWorker(HTML_FILE, abandonOnFailure=False)
        if html:
            await self.addHTMLLog("coverage.html", html)
        self.summarize(report["summary"])

    async def _report_from_tests(self, base: str | None, head: str) -> dict | None:
        """The test step's report, if it is there and describes this range and threshold."""
        if not self.tests_report:
            return None
        text = await self.getFileContentFromWorker(self.tests_report, abandonOnFailure=False)
        try:
            report = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(report, dict) or report.get("head") != head \
                or report.get("fail_under") != float(self.fail_under) \
                or (report.get("base") or None) != pushed_base(base):
            return None
        return report
