"""The base of every step that runs a Greenlight CLI verb on the worker and reads its JSON.

The engines do the work on the worker and write their JSON contract; a step only adapts:
the exit status goes through Buildbot's ``decodeRC`` (0 = the check passed, 1 = it found a
problem, anything else = the CLI refused its input), the report is read back from the
worker's file and kept whole as build data (``setBuildData``: a report can be megabytes, too
big for build properties), and the step's summary is the line the engine wrote for it.
"""
from __future__ import annotations

import json

from buildbot.process import buildstep, remotecommand, results
from buildbot.steps.worker import CompositeStepMixin

VERDICT_RC = {0: results.SUCCESS, 1: results.FAILURE}


class CliReportStep(buildstep.ShellMixin, CompositeStepMixin, buildstep.BuildStep):
    """Run ``greenlight VERB ...`` on the worker; subclasses build the arguments and read
    the report with :meth:`read_report`.

    ``greenlight``: the argv that runs the CLI on the worker (default the console script on
    PATH; e.g. ``["/srv/venv/bin/greenlight"]``).
    """

    report_file: str = ""   # the JSON contract the CLI writes in the build's workdir
    build_data: str = ""    # the name the report is kept under as build data

    def __init__(self, greenlight: list[str] | tuple[str, ...] = ("greenlight",), **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs.setdefault("decodeRC", dict(VERDICT_RC))
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)
        self.greenlight = list(greenlight)
        self._summary: str | None = None

    async def run_cli(self, args: list[str], **options) -> remotecommand.RemoteCommand:
        """Run the CLI with ``args``; stderr is collected for a refusal's reason."""
        cmd = await self.makeRemoteShellCommand(command=[*self.greenlight, *args],
                                                collectStderr=True, **options)
        await self.runCommand(cmd)
        return cmd

    def refused(self, cmd: remotecommand.RemoteCommand) -> bool:
        """True when the CLI rejected its input (an exit status outside ``decodeRC``); the
        summary then carries the CLI's last line of stderr."""
        if cmd.rc in self.decodeRC:
            return False
        self.summarize(f"{self.name}: bad input: {self.cli_error(cmd)}")
        return True

    @staticmethod
    def cli_error(cmd: remotecommand.RemoteCommand) -> str:
        """The CLI's own words for why it stopped: its last line of stderr."""
        reason = (cmd.stderr or "").strip().splitlines()
        return reason[-1] if reason else f"exit {cmd.rc}"

    async def read_report(self, cmd: remotecommand.RemoteCommand | None = None,
                          path: str | None = None) -> dict | None:
        """The JSON report the CLI wrote (``path``, default ``report_file``), or None with
        the summary saying why (refused input, missing or unreadable report)."""
        if cmd is not None and self.refused(cmd):
            return None
        path = path or self.report_file
        text = await self.getFileContentFromWorker(path, abandonOnFailure=False)
        try:
            report = json.loads(text) if text else None
        except ValueError:
            report = None
        if not isinstance(report, dict):
            said = f" ({self.cli_error(cmd)})" if cmd is not None else ""
            self.summarize(f"{self.name}: unreadable report {path}{said}")
            return None
        return report

    async def keep_report(self, report: dict) -> None:
        """The whole report as build data (for pages and the REST API), and as a log."""
        text = json.dumps(report, indent=2)
        await self.setBuildData(self.build_data, text.encode("utf-8"), type(self).__name__)
        await self.addCompleteLog("report.json", text)

    def summarize(self, text: str) -> None:
        self._summary = text
        self.updateSummary()

    def getCurrentSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getCurrentSummary()

    def getResultSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getResultSummary()
