"""The deploy builder's steps: run ``greenlight deploy`` (or ``rollback``) on the master's
worker and show each phase as a step of its own, with the judge's table as a log.

An adapter only: the deploy engine does the work and holds the lock; the CLI prints one JSON
line per phase (``--phase-lines``) and a final result line, which this step turns into phase
steps, properties and a summary.
"""
from __future__ import annotations

import json

from buildbot.process import buildstep, results

PHASE_PREFIX = "greenlight-phase: "  # the same as greenlight.cli.deploy (no import: no engine)
RESULT_PREFIX = "greenlight-result: "
STATUS = {"ok": results.SUCCESS, "failed": results.FAILURE, "skipped": results.SKIPPED}


def parse_phase_lines(stdout: str) -> tuple[list[dict], dict | None]:
    """(phase reports, final result) from the CLI's ``--phase-lines`` output."""
    phases, result = [], None
    for line in stdout.splitlines():
        if line.startswith(PHASE_PREFIX):
            try:
                phases.append(json.loads(line[len(PHASE_PREFIX):]))
            except ValueError:
                continue
        elif line.startswith(RESULT_PREFIX):
            try:
                result = json.loads(line[len(RESULT_PREFIX):])
            except ValueError:
                result = None
    return phases, result


class DeployPhase(buildstep.BuildStep):
    """One phase of a finished deploy, shown as a step (its summary; the judge's table)."""

    def __init__(self, report: dict, **kwargs):
        kwargs.setdefault("name", f"phase-{report.get('name', 'unknown')}")
        kwargs.setdefault("flunkOnFailure", True)
        super().__init__(**kwargs)
        self.report = report

    async def run(self):
        summary = str(self.report.get("summary", ""))
        started, finished = self.report.get("started_at"), self.report.get("finished_at")
        if isinstance(started, (int, float)) and isinstance(finished, (int, float)):
            # the phase ran inside the deploy step; this step only shows it afterwards
            summary += f" [{finished - started:.1f} s]"
            self.report = {**self.report, "summary": summary}
        await self.addCompleteLog("summary", summary + "\n")
        if self.report.get("log"):
            await self.addCompleteLog("judge table", str(self.report["log"]) + "\n")
        self.descriptionDone = [summary[:200]] if summary else None
        return STATUS.get(self.report.get("status"), results.WARNINGS)

    def getResultSummary(self):
        summary = str(self.report.get("summary", ""))
        return {"step": summary[:200]} if summary else super().getResultSummary()


class Deploy(buildstep.ShellMixin, buildstep.BuildStep):
    """Deploy the build's revision: ``greenlight deploy SHA --phase-lines`` on the worker.

    Properties set: ``deploy_outcome``, ``deploy_id``, ``deploy_sha``, ``deploy_previous_sha``,
    ``deploy_incident_id``. Exit 0 → SUCCESS (deployed, already live or superseded by a newer
    green commit), 1 → FAILURE (rolled back or failed), 2 → FAILURE (bad input).
    """

    name = "deploy"
    verb = "deploy"
    renderables = ["settings", "revision"]

    def __init__(self, settings: str | None = None, revision=None,
                 greenlight: list[str] | tuple[str, ...] = ("greenlight",), **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)
        self.settings = settings
        self.revision = revision
        self.greenlight = list(greenlight)
        self._summary: str | None = None

    def command_arguments(self) -> list[str] | None:
        """The CLI arguments after ``greenlight`` (None when there is nothing to deploy)."""
        sha = self.revision or self.getProperty("got_revision") or self.getProperty("revision")
        if not isinstance(sha, str) or not sha:
            return None
        args = [self.verb, sha, "--phase-lines", "--trigger", self._trigger()]
        branch = self.getProperty("branch")
        if isinstance(branch, str) and branch:
            args += ["--branch", branch]
        return args + (["--settings", self.settings] if self.settings else [])

    def _trigger(self) -> str:
        builder = self.getProperty("buildername") or "deploy"
        number = self.getProperty("buildnumber")
        owner = self.getProperty("owner")
        who = f" by {owner}" if isinstance(owner, str) and owner else ""
        return f"buildbot:{builder}/{number}{who}"

    async def run(self):
        args = self.command_arguments()
        if args is None:
            self._summary = f"{self.verb}: no revision (got_revision unset)"
            return results.FAILURE
        cmd = await self.makeRemoteShellCommand(command=[*self.greenlight, *args],
                                                collectStdout=True, collectStderr=True)
        await self.runCommand(cmd)
        phases, result = parse_phase_lines(cmd.stdout or "")
        if phases:
            self.build.addStepsAfterCurrentStep([DeployPhase(p) for p in phases])
        if result is None:
            reason = (cmd.stderr or "").strip().splitlines()
            self._summary = f"{self.verb}: {reason[-1] if reason else f'exit {cmd.rc}'}"
            return results.FAILURE
        for key, prop in (("outcome", "deploy_outcome"), ("deploy_id", "deploy_id"),
                          ("sha", "deploy_sha"), ("previous_sha", "deploy_previous_sha"),
                          ("incident_id", "deploy_incident_id")):
            self.setProperty(prop, result.get(key), self.name)
        judge = [p for p in phases if p.get("name") == "judge" and p.get("log")]
        if judge:
            await self.addCompleteLog("judge table", judge[-1]["log"] + "\n")
        await self.addCompleteLog("result.json", json.dumps(result, indent=2) + "\n")
        self._summary = f"{result.get('outcome')}: {result.get('message', '')}"[:250]
        return results.SUCCESS if cmd.rc == 0 else results.FAILURE

    def getResultSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getResultSummary()


class Rollback(Deploy):
    """``greenlight rollback [--to SHA]``: every host back on an earlier good release. The
    ``revision`` (e.g. a force-scheduler parameter) is the target; none = the previous good."""

    name = "rollback"
    verb = "rollback"

    def command_arguments(self) -> list[str] | None:
        args = ["rollback", "--phase-lines", "--trigger", self._trigger()]
        target = self.revision
        if isinstance(target, str) and target:
            args += ["--to", target]
        return args + (["--settings", self.settings] if self.settings else [])
