"""The Deploy step with Buildbot's own step harness; the worker's output is the CLI's real
phase-line rendering of real PhaseReport/DeployResult objects."""
from __future__ import annotations

import argparse
import contextlib
import io
import json

from buildbot.process.results import FAILURE, SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell, TestBuildStepMixin
from buildbot.util.lineboundaries import LineBoundaryFinder
from twisted.trial import unittest

from greenlight.cli.deploy import _finish, _phase_printer, _progress_printer
from greenlight.deploy.phases import DeployResult, PhaseReport, Progress
from greenlight.steps.deploy import Deploy, PhaseLines, Rollback, parse_phase_lines

SHA, PREV = "b" * 40, "a" * 40


def cli_output(outcome: str, judge_status: str, judge_log: str = "metric  canary  baseline\nlogins 0 40") -> str:
    args = argparse.Namespace(phase_lines=True, json=False)
    result = DeployResult(outcome, SHA, PREV, "judge failed the canary", deploy_id=7,
                          incident_id=3 if outcome == "rolled_back" else None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        show = _phase_printer(args)
        for name, status, log in (("prepare", "ok", ""), ("canary", "ok", ""),
                                  ("judge", judge_status, judge_log)):
            report = PhaseReport(name, status, f"{name} {status}", log)
            result.phases.append(report)
            show(report)
        _finish(args, result)
    return out.getvalue()


def test_parse_phase_lines_ignores_other_output():
    text = "noise\n" + cli_output("success", "ok") + "greenlight-phase: {broken\n"
    phases, result = parse_phase_lines(text)
    assert [p["name"] for p in phases] == ["prepare", "canary", "judge"]
    assert result["outcome"] == "success" and result["deploy_id"] == 7


def through_buildbot_lines(output: str, chunk: int) -> str:
    """``output`` as Buildbot's master stores it when the worker sends it in ``chunk``-sized
    pieces: its LineBoundaryFinder cuts lines longer than 4,096 characters."""
    finder, kept = LineBoundaryFinder(), []
    for start in range(0, len(output), chunk):
        kept.append(finder.append(output[start:start + chunk]) or "")
    kept.append(finder.flush() or "")
    return "".join(kept)


def test_a_long_judge_table_survives_buildbots_line_cutting():
    table = "\n".join(f"metric{i:03d}  pending  {i}/211  {2 * i}/632  -4.6%" for i in range(400))
    output = cli_output("success", "ok", table)
    assert max(map(len, output.splitlines())) < LineBoundaryFinder.MAX_LINELENGTH
    for chunk in (512, 4000, 4097, 65536):
        phases, result = parse_phase_lines(through_buildbot_lines(output, chunk))
        assert result is not None and result["outcome"] == "success", chunk
        assert result["phases"][-1]["log"] == table and phases[-1]["log"] == table
    # the same payload on one line is what Buildbot cut before (the deploy read as interrupted)
    raw = "greenlight-result: " + json.dumps({"outcome": "success", "log": table}) + "\n"
    assert parse_phase_lines(through_buildbot_lines(raw, 512))[1] is None


class DeployStepTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        return self.setup_test_build_step()

    def setup_step(self, step):
        super().setup_step(step)
        # Buildbot's FakeBuild lacks the real Build's addStepsAfterCurrentStep: record them
        self.added = []
        self.build.addStepsAfterCurrentStep = self.added.extend

    def expect_result_data(self, output: str) -> None:
        self.expect_build_data("greenlight-deploy",
                               json.dumps(parse_phase_lines(output)[1]).encode(), "Deploy")

    async def test_rolled_back_deploy_fails_with_phases_and_properties(self):
        self.setup_step(Deploy(settings="/etc/greenlight.toml"))
        output = cli_output("rolled_back", "failed")
        self.expect_result_data(output)
        self.expect_log_file("phases", "[prepare] ok: prepare ok\n[canary] ok: canary ok\n"
                                       "[judge] failed: judge failed\n")
        self.build.setProperty("got_revision", SHA, "test")
        self.build.setProperty("buildername", "deploy", "test")
        self.build.setProperty("buildnumber", 12, "test")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", "deploy", SHA, "--phase-lines", "--trigger",
                                 "buildbot:deploy/12", "--settings", "/etc/greenlight.toml"])
            .stdout(output).exit(1))
        self.expect_outcome(result=FAILURE)
        self.expect_property("deploy_outcome", "rolled_back", "deploy")
        self.expect_property("deploy_incident_id", 3, "deploy")
        self.expect_property("deploy_previous_sha", PREV, "deploy")
        self.expect_log_file("judge table", "metric  canary  baseline\nlogins 0 40\n")
        self.expect_result_summary({"step": "rolled_back: judge failed the canary"})
        await self.run_step()
        assert [s.name for s in self.added] == ["phase-prepare", "phase-canary", "phase-judge"]
        assert [s.report["status"] for s in self.added] == ["ok", "ok", "failed"]

    async def test_a_killed_deploy_says_where_it_stopped(self):
        self.setup_step(Deploy())
        args = argparse.Namespace(phase_lines=True, json=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):      # the CLI's own progress lines, then death
            show = _progress_printer(args)
            show(Progress(7, "deploy", "canary", 0, 2))
            show(Progress(7, "deploy", "rest", 1, 2))
        self.build.setProperty("got_revision", SHA, "test")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", "deploy", SHA, "--phase-lines", "--trigger",
                                 "buildbot:deploy/None"])
            .stdout(out.getvalue()).exit(-1))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "deploy: interrupted in phase rest after 1/2 hosts;"
                                            " the next deploy recovers them"})
        await self.run_step()

    async def test_success_and_missing_revision(self):
        self.setup_step(Deploy())
        output = cli_output("success", "ok")
        self.build.setProperty("got_revision", SHA, "test")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", "deploy", SHA, "--phase-lines", "--trigger",
                                 "buildbot:deploy/None"])
            .stdout(output).exit(0))
        self.expect_result_data(output)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("deploy_outcome", "success", "deploy")
        await self.run_step()

    async def test_rollback_names_its_target(self):
        self.setup_step(Rollback(revision=PREV))
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", "rollback", "--phase-lines", "--trigger",
                                 "buildbot:deploy/None", "--to", PREV])
            .stdout("").stderr("greenlight rollback: release aaaa is marked bad\n").exit(2))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "rollback: greenlight rollback: release aaaa is "
                                            "marked bad"})
        await self.run_step()

    async def test_phase_step_shows_the_judge_table(self):
        from greenlight.steps.deploy import DeployPhase
        self.setup_step(DeployPhase({"name": "judge", "status": "failed",
                                     "summary": "judge: fail", "log": "logins 0 vs 40"}))
        self.expect_outcome(result=FAILURE)
        self.expect_log_file("judge table", "logins 0 vs 40\n")
        self.expect_result_summary({"step": "judge: fail"})
        await self.run_step()

    async def test_phase_step_shows_how_long_the_phase_ran_inside_the_deploy(self):
        from greenlight.steps.deploy import DeployPhase
        self.setup_step(DeployPhase({"name": "judge", "status": "failed",
                                     "summary": "judge: fail — failing: logins (after 2.4 s)",
                                     "started_at": 100.0, "finished_at": 103.25}))
        self.expect_outcome(result=FAILURE)
        self.expect_log_file("summary", "judge: fail — failing: logins (after 2.4 s) [3.2 s]\n")
        self.expect_result_summary({"step": "judge: fail — failing: logins (after 2.4 s) [3.2 s]"})
        await self.run_step()


def test_the_live_observer_rejoins_a_long_phase_line():
    table = "x" * 9000
    seen = []

    class Step:
        def phase_done(self, phase):
            seen.append(phase)

    observer = PhaseLines(Step())
    for line in cli_output("success", "ok", table).splitlines():
        observer.outLineReceived(line)
    assert [p["name"] for p in seen] == ["prepare", "canary", "judge"]
    assert seen[-1]["log"] == table and observer.result["outcome"] == "success"
