"""Buildbot adapters of the sharding engine: plan on the verify build, fan out, collect.

    verify build:  PlanShards  ->  TriggerShards (waits)  ->  CollectShards
                   [-> FetchShardCoverage -> coverage combine -> CoverageGate]
                   (with min_suite_seconds PlanShards may decide against the fan-out: the
                   steps guarded by ``fans_out`` are skipped, ``runs_here`` ones run)
    shard build:   shard_builder_steps(...)  (download plan + the pytest plugin, pytest
                   --shard i/N rerunning its failures alone, upload the shard report, rerun
                   verdicts and coverage to the master)

The engine does the work (``greenlight.shards``); these steps only move files and properties.
Shard results travel as files uploaded to ``<reports_dir>/<parent build id>/`` on the master; a
retried shard build overwrites its first attempt's file, so the latest attempt wins, and the
union check in CollectShards fails the parent loudly if any collected test never ran.
"""
from __future__ import annotations

import json
from pathlib import Path

from buildbot.process import buildstep, results
from buildbot.process.properties import Interpolate, renderer
from buildbot.steps.shell import ShellCommand
from buildbot.steps.transfer import FileDownload, FileUpload, StringDownload
from buildbot.steps.trigger import Trigger
from buildbot.util.test_result_submitter import TestResultSubmitter
from twisted.internet import threads

from greenlight.errors import GreenlightError
from greenlight.shards.collect import FAILURE, WARNINGS, judge_shards, load_reports
from greenlight.shards.fanout import decide_fan_out
from greenlight.shards.planner import parse_test_ids, plan_shards
from greenlight.shards.render import render_plan_text

PLAN_FILE = "greenlight-shard-plan.json"
REPORT_FILE = "greenlight-shard.json"
RERUN_FILE = "greenlight-shard-rerun.json"
JUNIT_FILE = "greenlight-shard.xml"
PLUGIN_DIR = "greenlight-shard-plugin"   # in the shard builder's builddir, beside the checkout
PLUGIN_MODULE = "greenlight_shard"       # = the pytest11 entry point's name where installed
FAN_OUT_PROPERTY = "shard_fan_out"
DEFAULT_COLLECT = ("python", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")


class PlanShards(buildstep.ShellMixin, buildstep.BuildStep):
    """Collect the test ids on the worker, plan ``shards`` shards from the recorded durations
    (read on the master), and set the plan as property ``shard_plan`` (the JSON contract of
    ``greenlight shards plan``) plus ``shard_count``.

    With ``min_suite_seconds`` (``[shards] count = "auto"``) it also decides whether this
    build fans out at all (``greenlight.shards.fanout``) and sets ``shard_fan_out``; a build
    that does not fan out gets no ``shard_plan`` and ``shard_count`` 1, and runs its tests
    itself (the steps after this one check ``fans_out``)."""

    name = "plan-shards"
    renderables = ["shards", "durations_db"]

    def __init__(self, shards: int = 2, collect_command=DEFAULT_COLLECT,
                 durations_db: str | None = None, group_by_module: bool = False,
                 plan_property: str = "shard_plan", min_suite_seconds: float | None = None,
                 **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command"])
        super().__init__(**kwargs)
        self.shards = shards
        self.min_suite_seconds = min_suite_seconds
        self.collect_command = list(collect_command)
        self.durations_db = durations_db
        self.group_by_module = group_by_module
        self.plan_property = plan_property
        self._summary: str | None = None

    async def run(self):
        cmd = await self.makeRemoteShellCommand(command=self.collect_command,
                                                collectStdout=True, collectStderr=True)
        await self.runCommand(cmd)
        ids = parse_test_ids(cmd.stdout or "")
        if cmd.rc not in (0, 5) or not ids:
            await self.addCompleteLog("collection", (cmd.stdout or "") + (cmd.stderr or ""))
            self._summary = f"test collection failed (exit {cmd.rc}, {len(ids)} tests)"
            return results.FAILURE
        status = results.SUCCESS
        try:
            durations = await threads.deferToThread(_read_durations, self.durations_db)
        except GreenlightError as exc:
            await self.addCompleteLog("durations", f"{exc}\nplanning with equal durations\n")
            durations, status = {}, results.WARNINGS
        try:
            # Off the reactor thread: a large suite takes the planner a second or so.
            plan = await threads.deferToThread(plan_shards, ids, durations, int(self.shards),
                                               group_by_module=bool(self.group_by_module))
        except GreenlightError as exc:
            self._summary = f"cannot plan shards: {exc}"
            return results.FAILURE
        decision = decide_fan_out(plan, None if self.min_suite_seconds is None
                                  else float(self.min_suite_seconds))
        self.setProperty(FAN_OUT_PROPERTY, decision.fan_out, self.name)
        if not decision.fan_out:
            self.setProperty("shard_count", 1, self.name)
            self._summary = f"{len(ids)} tests, run here: {decision.reason}"
            return status
        self.setProperty(self.plan_property, plan.to_json(), self.name)
        self.setProperty("shard_count", len(plan.shards), self.name)
        await self.addCompleteLog("plan", render_plan_text(plan))
        self._summary = (f"{len(ids)} tests in {len(plan.shards)} shards, predicted "
                         f"{plan.makespan:.1f} s each at most (ideal {plan.ideal_seconds:.1f} s)")
        return status

    def getResultSummary(self):
        return {"step": self._summary} if self._summary else super().getResultSummary()


def fans_out(step) -> bool:
    """``doStepIf`` of the fan-out path's steps: PlanShards decided to fan out (a build whose
    planning never ran, or set no decision, counts as fanning out, as before the decision)."""
    return step.getProperty(FAN_OUT_PROPERTY) is not False


def runs_here(step) -> bool:
    """``doStepIf`` of the steps that run the tests in the verify build itself."""
    return not fans_out(step)


def skipped(result, step) -> bool:
    """``hideStepIf``: the path a build did not take stays out of its step list."""
    return result == results.SKIPPED


def _read_durations(url: str | None) -> dict[str, float]:
    from greenlight.shards.durations import DurationStore
    return DurationStore(url).durations()


class TriggerShards(Trigger):
    """Trigger one build of ``schedulerName`` (a Triggerable on the shard builder, which must
    have ``collapseRequests=False``) per shard of the plan, with properties ``shard_index``,
    ``shard_count``, ``shard_plan`` and ``shard_parent_buildid``; waits for them by default."""

    def __init__(self, schedulerName: str = "shards", plan_property: str = "shard_plan",
                 **kwargs):
        kwargs.setdefault("waitForFinish", True)
        kwargs.setdefault("name", "shards")
        super().__init__(schedulerNames=[schedulerName], **kwargs)
        self.plan_property = plan_property

    def getSchedulersAndProperties(self):
        plan = self.getProperty(self.plan_property) or {"shards": [{"index": 1}]}
        count = len(plan["shards"])
        base = dict(self.set_properties or {})
        return [{"sched_name": self.schedulerNames[0], "unimportant": False,
                 "props_to_set": {**base, "shard_index": shard["index"], "shard_count": count,
                                  "shard_plan": plan, "shard_parent_buildid": self.build.buildid}}
                for shard in plan["shards"]]


def plugin_source() -> str:
    """The pytest plugin's file on the master (stdlib + pytest only), shipped to shard builds."""
    import importlib.util

    return importlib.util.find_spec("greenlight.shards.pytest_plugin").origin


def shard_builder_steps(test_command, reports_dir: str, rerun_failures: bool = True,
                        coverage_python: str | None = None, ship_plugin: bool = True) -> list:
    """The steps of the shard builder: run this shard, rerun its failures alone, upload.

    ``test_command`` is the argv of pytest on the worker (e.g. ``["python", "-m", "pytest",
    "-n", "auto"]``, or under ``coverage run``); ``reports_dir`` is a folder on the master (the
    CollectShards one). With ``coverage_python`` (the worker's python that has coverage) the
    shard's coverage data is combined and uploaded too, for FetchShardCoverage in the parent.

    The worker needs nothing of Greenlight: with ``ship_plugin`` the pytest plugin's one file
    is downloaded to ``<builddir>/greenlight-shard-plugin/greenlight_shard.py`` (outside the
    checkout, so a clobbering checkout keeps it and coverage does not see it) and loaded with
    ``-p greenlight_shard`` through ``PYTHONPATH``; the plugin itself reruns the failed tests
    alone with the target's python (``--shard-rerun-report``). Without ``ship_plugin`` the
    target's venv must have Greenlight installed (its ``pytest11`` entry point loads it).
    """
    plan_json = renderer(lambda props: json.dumps(props.getProperty("shard_plan") or {}))
    dest = f"{reports_dir}/%(prop:shard_parent_buildid)s/shard-%(prop:shard_index)s"
    steps = [StringDownload(plan_json, workerdest=PLAN_FILE, name="shard-plan")]
    command = list(test_command)
    env = None
    if ship_plugin:
        folder = Interpolate(f"%(prop:builddir)s/{PLUGIN_DIR}")
        steps.append(FileDownload(mastersrc=plugin_source(), name="shard-plugin",
                                  workerdest=Interpolate(f"%(prop:builddir)s/{PLUGIN_DIR}/"
                                                         f"{PLUGIN_MODULE}.py")))
        command += ["-p", PLUGIN_MODULE]
        env = {"PYTHONPATH": folder}
    command += [Interpolate("--shard=%(prop:shard_index)s/%(prop:shard_count)s"),
                f"--shard-plan={PLAN_FILE}", f"--shard-report={REPORT_FILE}",
                f"--junitxml={JUNIT_FILE}"]
    if rerun_failures:
        command.append(f"--shard-rerun-report={RERUN_FILE}")
    steps.append(ShellCommand(name="tests", logEnviron=False, command=command, env=env,
                              flunkOnFailure=False, warnOnFailure=True))
    steps.append(FileUpload(workersrc=REPORT_FILE, masterdest=Interpolate(dest + ".json"),
                            alwaysRun=True, name="upload-shard-report"))
    if coverage_python:
        steps.append(ShellCommand(name="combine-coverage", logEnviron=False, alwaysRun=True,
                                  command=[coverage_python, "-m", "coverage", "combine"],
                                  flunkOnFailure=False, warnOnFailure=True))
        steps.append(FileUpload(workersrc=".coverage", masterdest=Interpolate(dest + ".coverage"),
                                alwaysRun=True, flunkOnFailure=False, warnOnFailure=True,
                                name="upload-shard-coverage"))
    if rerun_failures:
        steps.append(FileUpload(workersrc=RERUN_FILE, masterdest=Interpolate(dest + ".rerun.json"),
                                alwaysRun=True, flunkOnFailure=False,
                                name="upload-rerun-verdicts"))
    return steps


class FetchShardCoverage(buildstep.BuildStep):
    """Download every shard's uploaded coverage data into the parent's work dir as
    ``.coverage.<shard>`` files, so ``coverage combine`` and the coverage gate see the whole
    suite (the target needs ``relative_files = true``, shards run in other checkouts)."""

    name = "fetch-shard-coverage"
    renderables = ["reports_dir"]

    def __init__(self, reports_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.reports_dir = reports_dir
        self._summary: str | None = None

    async def run(self):
        folder = Path(self.reports_dir) / str(self.build.buildid)
        files = sorted(folder.glob("shard-*.coverage"))
        if not files:
            self._summary = f"no shard coverage data in {folder}"
            return results.WARNINGS
        self.build.addStepsAfterCurrentStep([
            FileDownload(mastersrc=str(f), workerdest=f".coverage.greenlight-{f.stem}",
                         name=f"download-{f.stem}-coverage")
            for f in files])
        self._summary = f"coverage data of {len(files)} shards"
        return results.SUCCESS

    def getResultSummary(self):
        return {"step": self._summary} if self._summary else super().getResultSummary()


class CollectShards(buildstep.BuildStep):
    """Join the shards into one verdict on the master: union check, failures named, flaky tests
    recorded in the ledger (WARNINGS unless ``fail_on_flaky``), durations recorded, and a
    predicted-vs-actual table per shard."""

    name = "collect-shards"
    renderables = ["reports_dir", "durations_db"]

    def __init__(self, reports_dir: str, durations_db: str | None = None,
                 plan_property: str = "shard_plan", fail_on_flaky: bool = False,
                 record: bool = True, publish_results: bool = True, **kwargs):
        # Flaky-only is WARNINGS, and that must mark the build (Buildbot's default ignores a
        # step's WARNINGS for the build's result).
        kwargs.setdefault("warnOnWarnings", True)
        super().__init__(**kwargs)
        self.publish_results = publish_results
        self.reports_dir = reports_dir
        self.durations_db = durations_db
        self.plan_property = plan_property
        self.fail_on_flaky = fail_on_flaky
        self.record = record
        self._summary: str | None = None

    async def run(self):
        folder = Path(self.reports_dir) / str(self.build.buildid)
        paths = sorted(folder.glob("shard-*.json"), key=lambda p: p.stat().st_mtime)
        try:
            reports, reruns = load_reports(paths)
        except GreenlightError as exc:
            self._summary = str(exc)
            return results.FAILURE
        verdict = judge_shards(reports, reruns, self.getProperty(self.plan_property),
                               fail_on_flaky=bool(self.fail_on_flaky))
        await self.addCompleteLog("shards", verdict.render_text())
        if self.publish_results:
            await self._publish(reports, set(verdict.flaky))
        await self.addCompleteLog("shards.json", json.dumps(verdict.to_json(), indent=1))
        self.setProperty("shards_result", verdict.result, self.name)
        self.setProperty("shards_failed_tests", list(verdict.failed), self.name)
        self.setProperty("shards_flaky_tests", list(verdict.flaky), self.name)
        self.setProperty("shards_union_ok", verdict.union.ok, self.name)
        if self.record:
            commit = self.getProperty("got_revision") or self.getProperty("revision")
            try:
                await threads.deferToThread(_record, self.durations_db, verdict,
                                            str(self.build.buildid), commit)
            except GreenlightError as exc:
                await self.addCompleteLog("store", f"not recorded: {exc}\n")
        self._summary = verdict.summary()
        return {FAILURE: results.FAILURE, WARNINGS: results.WARNINGS}.get(verdict.result,
                                                                            results.SUCCESS)

    async def _publish(self, reports, flaky: set[str]) -> None:
        """Every shard's results into Buildbot's test results (latest attempt per shard); a
        flaky test counts as passed there, as it did not fail the build."""
        latest = {int(r["shard"]): r for r in reports}
        submitter = TestResultSubmitter()
        await submitter.setup(self, "pytest shards", "pass_fail", "boolean")
        for index in sorted(latest):
            for test_id, result in latest[index]["results"].items():
                if result["outcome"] == "skipped":
                    continue
                passed = result["outcome"] == "passed" or test_id in flaky
                submitter.add_test_result("1" if passed else "0", test_name=test_id,
                                          duration_ns=int(float(result["seconds"]) * 1e9))
        await submitter.finish()

    def getResultSummary(self):
        return {"step": self._summary} if self._summary else super().getResultSummary()


def _record(url: str | None, verdict, build: str, commit) -> None:
    from greenlight.shards.durations import DurationStore
    from greenlight.shards.flaky import FlakyLedger
    DurationStore(url).record(verdict.durations, build=build)
    if verdict.flaky:
        FlakyLedger(url).record(verdict.flaky, build=build,
                                commit=commit if isinstance(commit, str) else None,
                                messages=dict(verdict.messages))
