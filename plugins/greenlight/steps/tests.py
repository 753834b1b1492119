"""The verify build's test step: run the target's tests, publish each result to Buildbot.

Runs the test command on the worker with ``--junitxml``, reads the JUnit file back, and feeds
every test case into Buildbot's test-results API so the UI lists each test; failing tests'
names and tracebacks also go into a ``failures`` log readable from the build page.
"""
from __future__ import annotations

from buildbot.process import buildstep, results
from buildbot.steps.worker import CompositeStepMixin
from buildbot.util.test_result_submitter import TestResultSubmitter
from twisted.internet import threads

from greenlight.errors import GreenlightError, UsageError
from greenlight.shards.junit import parse_junit


def failure_report(cases) -> str:
    """Plain-text block listing each failing test with its traceback."""
    parts = []
    for case in cases:
        if case.failed:
            parts.append(f"=== {case.test_id} ({case.outcome})\n{case.message.rstrip()}\n")
    return "\n".join(parts)


def summary(cases) -> str:
    failed = [c.test_id for c in cases if c.failed]
    passed = sum(1 for c in cases if c.outcome == "passed")
    text = f"{passed} passed, {len(failed)} failed"
    if failed:
        shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        text += f": {shown}"
    return text


class RunTests(buildstep.ShellMixin, CompositeStepMixin, buildstep.BuildStep):
    """Run ``command`` (an argv list) with ``--junitxml=<junit_file>`` and publish the results.

    ``durations_db``: also fold each test's time into the shard planner's durations store, so
    a verify build that ran its suite itself (too short to fan out) keeps the prediction that
    decides the next build's fan-out up to date."""

    name = "tests"
    renderables = ["junit_file", "durations_db"]

    def __init__(self, junit_file: str = "junit.xml", durations_db: str | None = None,
                 **kwargs):
        kwargs.setdefault("logEnviron", False)
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.junit_file = junit_file
        self.durations_db = durations_db
        self._summary = None

    async def run(self):
        command = [*self.command, f"--junitxml={self.junit_file}"]
        cmd = await self.makeRemoteShellCommand(command=command)
        await self.runCommand(cmd)
        try:
            text = await self.getFileContentFromWorker(self.junit_file, abandonOnFailure=False)
        except Exception:
            text = None
        if not text:
            self._summary = f"no test report ({self.junit_file} missing): exit {cmd.rc}"
            return results.FAILURE
        try:
            cases = parse_junit(text, source=self.junit_file)
        except UsageError as exc:
            await self.addCompleteLog("junit-error", str(exc))
            self._summary = "unreadable test report"
            return results.FAILURE
        await self._publish(cases)
        if self.durations_db:
            try:
                await threads.deferToThread(_record_durations, self.durations_db, cases,
                                            str(self.build.buildid))
            except GreenlightError as exc:
                await self.addCompleteLog("durations", f"not recorded: {exc}\n")
        report = failure_report(cases)
        if report:
            await self.addCompleteLog("failures", report)
        self._summary = summary(cases)
        self.setProperty("tests_passed", sum(c.outcome == "passed" for c in cases), "tests")
        self.setProperty("tests_failed", [c.test_id for c in cases if c.failed], "tests")
        if cmd.rc != 0 or any(c.failed for c in cases):
            return results.FAILURE
        return results.SUCCESS

    async def _publish(self, cases) -> None:
        submitter = TestResultSubmitter()
        await submitter.setup(self, "pytest", "pass_fail", "boolean")
        for case in cases:
            if case.outcome == "skipped":
                continue
            submitter.add_test_result("0" if case.failed else "1", test_name=case.test_id,
                                      duration_ns=int(case.seconds * 1e9))
        await submitter.finish()

    def getResultSummary(self):
        if self._summary:
            return {"step": self._summary}
        return super().getResultSummary()


def _record_durations(url: str, cases, build: str) -> None:
    from greenlight.shards.durations import DurationStore
    DurationStore(url).record_results(cases, build=build)
