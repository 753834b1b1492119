"""The deploy builder's steps: run ``greenlight deploy`` (or ``rollback``) on the master's
worker and show each phase as a step of its own, with the judge's table as a log.

An adapter only: the deploy engine does the work and holds the lock; the CLI prints one JSON
line per phase (``--phase-lines``) as each phase ends and a final result line. A log observer
reads them as they stream, so the ``phases`` log and the step's summary follow the deploy
live; at the end they become phase steps, properties and a summary.
"""
from __future__ import annotations

import json

from buildbot.process import buildstep, logobserver, results

from greenlight.steps.cli_report import CliReportStep

PHASE_PREFIX = "greenlight-phase: "  # the same as greenlight.cli.deploy (no import: no engine)
RESULT_PREFIX = "greenlight-result: "
PROGRESS_PREFIX = "greenlight-progress: "
_PREFIXES = (PHASE_PREFIX, RESULT_PREFIX, PROGRESS_PREFIX)
_FRAMED = {p.rstrip(": ") for p in _PREFIXES}
STATUS = {"ok": results.SUCCESS, "failed": results.FAILURE, "skipped": results.SKIPPED}


def _is_piece(line: str) -> bool:
    """A continuation line ``<prefix>~ piece`` of a long payload (greenlight.cli.deploy.framed)."""
    head, sep, _ = line.partition("~ ")
    return bool(sep) and head in _FRAMED


def unframe(lines) -> list[str]:
    """The CLI's lines with each long payload whole again: ``<prefix>~ piece`` lines (see
    greenlight.cli.deploy.framed) are joined onto the prefixed line that ends them."""
    whole, pending = [], ""
    for line in lines:
        if _is_piece(line):
            pending += line.partition("~ ")[2]
            continue
        if pending:
            prefix = next((p for p in _PREFIXES if line.startswith(p)), None)
            line = prefix + pending + line[len(prefix):] if prefix else line
            pending = ""
        whole.append(line)
    return whole


def parse_phase_lines(stdout: str) -> tuple[list[dict], dict | None]:
    """(phase reports, final result) from the CLI's ``--phase-lines`` output."""
    phases, result = [], None
    for line in unframe(stdout.splitlines()):
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


class PhaseLines(logobserver.LogLineObserver):
    """Reads the CLI's phase lines as they stream from the worker: each phase is written to
    the step's ``phases`` log and shown as the step's summary the moment the CLI prints it,
    so the build page follows a deploy phase by phase while it runs."""

    def __init__(self, step: "Deploy"):
        super().__init__()
        self.setMaxLineLength(1 << 24)  # a rejoined judge table (unframe) is one long line
        self.step = step
        self.phases: list[dict] = []
        self.result: dict | None = None
        self.progress: dict | None = None   # the last "where the deploy is" line
        self.pending: list[str] = []        # pieces of a long payload (unframe)

    def outLineReceived(self, line: str) -> None:
        if _is_piece(line):             # a long payload's piece: wait for its last line
            self.pending.append(line)
            return
        line, self.pending = unframe([*self.pending, line])[0], []
        if line.startswith(PROGRESS_PREFIX):
            try:
                self.progress = json.loads(line[len(PROGRESS_PREFIX):])
            except ValueError:
                pass
            return
        found = parse_phase_lines(line)
        for phase in found[0]:
            self.phases.append(phase)
            self.step.phase_done(phase)
        if found[1] is not None:
            self.result = found[1]


class Deploy(CliReportStep):
    """Deploy the build's revision: ``greenlight deploy SHA --phase-lines`` on the worker.

    Properties set: ``deploy_outcome``, ``deploy_id``, ``deploy_sha``, ``deploy_previous_sha``,
    ``deploy_incident_id``. Exit 0 → SUCCESS (deployed, already live or superseded by a newer
    green commit), 1 → FAILURE (rolled back or failed), 2 → FAILURE (bad input). The result is
    build data ``greenlight-deploy``.
    """

    name = "deploy"
    verb = "deploy"
    build_data = "greenlight-deploy"
    renderables = ["settings", "revision"]

    def __init__(self, settings: str | None = None, revision=None, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        self.revision = revision
        self.observer = PhaseLines(self)
        self.addLogObserver("stdio", self.observer)
        self._phases_log = None

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

    def phase_done(self, phase: dict) -> None:
        """One phase just ended on the worker: a line in ``phases``, the live summary."""
        line = f"[{phase.get('name', '?')}] {phase.get('status', '?')}: {phase.get('summary', '')}"
        if self._phases_log is not None:
            self._phases_log.addStdout(line + "\n")
        self.summarize(f"{self.verb}: {line}"[:250])

    async def run(self):
        args = self.command_arguments()
        if args is None:
            self.summarize(f"{self.verb}: no revision (got_revision unset)")
            return results.FAILURE
        self._phases_log = await self.addLog("phases")
        cmd = await self.run_cli(args, collectStdout=True)
        await self._phases_log.finish()
        # The observer drives the live view; the command's whole stdout is the record (under
        # load the observer may not have seen the last lines when the command completes).
        phases, result = parse_phase_lines(cmd.stdout or "")
        if not phases and not result:
            phases, result = self.observer.phases, self.observer.result
        if phases:
            self.build.addStepsAfterCurrentStep([DeployPhase(p) for p in phases])
        if result is None:
            # the CLI died before its result line: say where it stopped, from its last
            # progress line, rather than only an exit status
            where = (self.observer.progress or {}).get("if_interrupted")
            self.summarize(f"{self.verb}: {where or self.cli_error(cmd)}"[:250])
            return results.FAILURE
        for key, prop in (("outcome", "deploy_outcome"), ("deploy_id", "deploy_id"),
                          ("sha", "deploy_sha"), ("previous_sha", "deploy_previous_sha"),
                          ("incident_id", "deploy_incident_id")):
            self.setProperty(prop, result.get(key), self.name)
        judge = [p for p in phases if p.get("name") == "judge" and p.get("log")]
        if judge:
            await self.addCompleteLog("judge table", judge[-1]["log"] + "\n")
        await self.setBuildData(self.build_data, json.dumps(result).encode("utf-8"),
                                type(self).__name__)
        failure = result.get("failure") or {}
        if failure.get("log_tail"):
            await self.addCompleteLog(f"start-up log {failure.get('host', '')}".strip(),
                                      str(failure["log_tail"]).rstrip() + "\n")
        await self.addCompleteLog("result.json", json.dumps(result, indent=2) + "\n")
        self.summarize(f"{result.get('outcome')}: {result.get('message', '')}"[:250])
        return cmd.results()


class Rollback(Deploy):
    """``greenlight rollback [--to SHA]``: every host back on an earlier good release. The
    ``revision`` (e.g. a force-scheduler parameter) is the target; none = the previous good."""

    name = "rollback"
    verb = "rollback"
    build_data = "greenlight-rollback"

    def command_arguments(self) -> list[str] | None:
        args = ["rollback", "--phase-lines", "--trigger", self._trigger()]
        target = self.revision
        if isinstance(target, str) and target:
            args += ["--to", target]
        return args + (["--settings", self.settings] if self.settings else [])
