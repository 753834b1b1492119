"""The Buildbot adapters with Buildbot's own step harness (the worker's output is a real
``pytest --collect-only`` run; the shard reports are real plugin output)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from buildbot.process import remotetransfer
from buildbot.process.results import FAILURE, SUCCESS, WARNINGS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import (ExpectDownloadFile, ExpectRemoteRef, ExpectShell,
                                  TestBuildStepMixin)
from twisted.internet import defer
from twisted.trial import unittest

from greenlight.shards.durations import DurationStore
from greenlight.shards.flaky import FlakyLedger
from greenlight.steps.shards import (DEFAULT_COLLECT, CollectShards, FetchShardCoverage,
                                     PlanShards, TriggerShards, plugin_source,
                                     shard_builder_steps)

from tests.conftest import child_env

SUITE = "import pytest\n\n@pytest.mark.parametrize('k', range(6))\ndef test_k(k):\n" \
        "    assert k != 4\n"


class ShardStepsTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="shard-steps-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        (self.tmp / "pytest.ini").write_text("[pytest]\n")
        (self.tmp / "test_s.py").write_text(SUITE)
        self.db = f"sqlite:///{self.tmp}/store.sqlite"
        self.setup_test_reactor()
        return self.setup_test_build_step()

    def pytest(self, *args):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                              cwd=self.tmp, env=child_env(), capture_output=True, text=True)

    async def test_plan_sets_the_plan_property_from_recorded_durations(self):
        collected = self.pytest("--collect-only", "-q").stdout
        DurationStore(self.db).record({"test_s.py::test_k[0]": 5.0, "test_s.py::test_k[1]": 0.1,
                                       "test_s.py::test_k[2]": 0.1})
        self.setup_step(PlanShards(shards=2, durations_db=self.db))
        self.expect_commands(ExpectShell(workdir="wkdir", log_environ=False,
                                         command=list(DEFAULT_COLLECT))
                             .stdout(collected).exit(0))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("shard_count", 2, "plan-shards")
        await self.run_step()
        plan = self.step.getProperty("shard_plan")
        assert sorted(t for s in plan["shards"] for t in s["tests"]) == [
            f"test_s.py::test_k[{k}]" for k in range(6)]
        assert plan["unknown"] == [f"test_s.py::test_k[{k}]" for k in range(3, 6)]
        assert plan["mean_seconds"] == round((5.0 + 0.1 + 0.1) / 3, 6)  # the module's mean

    async def test_auto_plan_keeps_a_short_suite_in_the_verify_build(self):
        collected = self.pytest("--collect-only", "-q").stdout
        DurationStore(self.db).record({f"test_s.py::test_k[{k}]": 0.5 for k in range(6)})
        self.setup_step(PlanShards(shards=2, durations_db=self.db, min_suite_seconds=30))
        self.expect_commands(ExpectShell(workdir="wkdir", log_environ=False,
                                         command=list(DEFAULT_COLLECT))
                             .stdout(collected).exit(0))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("shard_fan_out", False, "plan-shards")
        self.expect_property("shard_count", 1, "plan-shards")
        self.expect_result_summary({"step": "6 tests, run here: predicted 3.0 s < 30 s "
                                            "(min_suite_seconds): no fan-out"})
        await self.run_step()
        assert self.step.getProperty("shard_plan") is None

    async def test_auto_plan_fans_out_a_long_suite(self):
        collected = self.pytest("--collect-only", "-q").stdout
        DurationStore(self.db).record({f"test_s.py::test_k[{k}]": 6.0 for k in range(6)})
        self.setup_step(PlanShards(shards=2, durations_db=self.db, min_suite_seconds=30))
        self.expect_commands(ExpectShell(workdir="wkdir", log_environ=False,
                                         command=list(DEFAULT_COLLECT))
                             .stdout(collected).exit(0))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("shard_fan_out", True, "plan-shards")
        self.expect_property("shard_count", 2, "plan-shards")
        await self.run_step()
        assert len(self.step.getProperty("shard_plan")["shards"]) == 2

    async def test_plan_fails_when_collection_fails(self):
        self.setup_step(PlanShards(shards=2, durations_db=self.db))
        self.expect_commands(ExpectShell(workdir="wkdir", log_environ=False,
                                         command=list(DEFAULT_COLLECT))
                             .stdout("ERROR collecting test_s.py\n").exit(2))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "test collection failed (exit 2, 0 tests)"})
        await self.run_step()

    def run_shards(self, folder: Path, flaky_rerun: bool) -> dict:
        """Run both shards for real, leaving their reports where FileUpload would."""
        folder.mkdir(parents=True)
        for i in (1, 2):
            self.pytest("-q", f"--shard={i}/2", f"--shard-report={folder}/shard-{i}.json")
        if flaky_rerun:
            (folder / "shard-9.rerun.json").write_text(json.dumps({"reruns": [
                {"test_id": "test_s.py::test_k[4]", "verdict": "flaky", "message": "k == 4"}]}))
        return json.loads((folder / "shard-1.json").read_text())

    async def test_collect_names_the_failing_test(self):
        self.run_shards(self.tmp / "reports" / "92", flaky_rerun=False)
        self.setup_step(CollectShards(reports_dir=str(self.tmp / "reports"),
                                      durations_db=self.db))
        self.build.getBuilderId = lambda: defer.succeed(88)
        self.expect_outcome(result=FAILURE)
        self.expect_property("shards_failed_tests", ["test_s.py::test_k[4]"], "collect-shards")
        self.expect_property("shards_union_ok", True, "collect-shards")
        self.expect_result_summary({"step": "2 shards, 6 tests; 1 failed: test_s.py::test_k[4]"})
        await self.run_step()
        assert len(DurationStore(self.db).durations()) == 6
        # Every test is in Buildbot's test results (the UI's list), the failure as "0".
        sets = await self.master.db.test_result_sets.getTestResultSets(builderid=88)
        published = await self.master.db.test_results.getTestResults(88, sets[0].id)
        values = {r.test_name: r.value for r in published}
        assert len(values) == 6 and values["test_s.py::test_k[4]"] == "0"
        assert values["test_s.py::test_k[0]"] == "1"

    async def test_collect_flaky_is_warnings_and_recorded(self):
        self.run_shards(self.tmp / "reports" / "92", flaky_rerun=True)
        self.setup_step(CollectShards(reports_dir=str(self.tmp / "reports"),
                                      durations_db=self.db, publish_results=False))
        self.build.setProperty("got_revision", "c0ffee", "test")
        self.expect_outcome(result=WARNINGS)
        self.expect_property("shards_flaky_tests", ["test_s.py::test_k[4]"], "collect-shards")
        await self.run_step()
        entries = FlakyLedger(self.db).flakiest()
        assert [(e.test_id, e.last_build, e.last_commit) for e in entries] == \
            [("test_s.py::test_k[4]", "92", "c0ffee")]
        # ... and the step's WARNINGS marks the build (Buildbot ignores it by default).
        assert self.get_nth_step(0).warnOnWarnings is True

    async def test_collect_fails_loudly_when_a_shard_left_nothing(self):
        folder = self.tmp / "reports" / "92"
        self.run_shards(folder, flaky_rerun=False)
        (folder / "shard-2.json").unlink()
        self.setup_step(CollectShards(reports_dir=str(self.tmp / "reports"), record=False,
                                      publish_results=False))
        self.expect_outcome(result=FAILURE)
        self.expect_property("shards_union_ok", False, "collect-shards")
        await self.run_step()


def test_trigger_fans_out_one_request_per_shard():
    step = TriggerShards(schedulerName="shard-runner", set_properties={"x": 1})
    step = step.get_step_factory().buildStep()  # the per-build instance Buildbot makes

    class Build:
        buildid = 7

    plan = {"shards": [{"index": 1, "tests": ["a"]}, {"index": 2, "tests": ["b"]}]}
    step.build = Build()
    step.getProperty = lambda name, default=None: plan if name == "shard_plan" else default
    requests = step.getSchedulersAndProperties()
    assert [r["props_to_set"]["shard_index"] for r in requests] == [1, 2]
    assert all(r["sched_name"] == "shard-runner" and r["props_to_set"]["shard_count"] == 2
               and r["props_to_set"]["x"] == 1 and r["props_to_set"]["shard_parent_buildid"] == 7
               for r in requests)


class ShardBuilderStepsTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        return self.setup_test_build_step()

    async def test_the_tests_step_runs_this_shard_of_the_plan(self):
        steps = shard_builder_steps(["python", "-m", "pytest", "-n", "auto"], "var/shards",
                                    coverage_python="python")
        assert [s.name for s in steps] == [
            "shard-plan", "shard-plugin", "tests", "upload-shard-report", "combine-coverage",
            "upload-shard-coverage", "upload-rerun-verdicts"]
        assert steps[1].mastersrc == plugin_source()
        assert Path(plugin_source()).name == "pytest_plugin.py"
        self.setup_step(steps[2])
        self.build.setProperty("shard_index", 2, "Trigger")
        self.build.setProperty("shard_count", 3, "Trigger")
        self.build.setProperty("builddir", "/w/shard", "Worker")
        self.expect_commands(ExpectShell(
            workdir="wkdir", log_environ=False,
            env={"PYTHONPATH": "/w/shard/greenlight-shard-plugin"}, command=[
                "python", "-m", "pytest", "-n", "auto", "-p", "greenlight_shard", "--shard=2/3",
                "--shard-plan=greenlight-shard-plan.json", "--shard-report=greenlight-shard.json",
                "--junitxml=greenlight-shard.xml",
                "--shard-rerun-report=greenlight-shard-rerun.json"]).exit(1))
        # The step shows red, but flunkOnFailure=False: the verdict is CollectShards' to give.
        self.expect_outcome(result=FAILURE)
        await self.run_step()

    async def test_the_plugin_lands_beside_the_checkout(self):
        step = shard_builder_steps(["python", "-m", "pytest"], "var/shards")[1]
        self.setup_step(step)
        self.build.setProperty("builddir", "/w/shard", "Worker")
        shipped = []
        self.expect_commands(ExpectDownloadFile(
            workerdest="/w/shard/greenlight-shard-plugin/greenlight_shard.py",
            workdir="wkdir", blocksize=16384, maxsize=None, mode=None,
            reader=ExpectRemoteRef(remotetransfer.FileReader))
            .download_string(shipped.append, size=1_000_000).exit(0))
        self.expect_outcome(result=SUCCESS)
        await self.run_step()
        assert shipped == [Path(plugin_source()).read_bytes()]

    def test_without_shipping_the_installed_plugin_is_used_as_is(self):
        steps = shard_builder_steps(["python", "-m", "pytest"], "var/shards",
                                    rerun_failures=False, ship_plugin=False)
        assert [s.name for s in steps] == ["shard-plan", "tests", "upload-shard-report"]
        plain = [a for a in steps[1].command if isinstance(a, str)]
        assert plain[:3] == ["python", "-m", "pytest"] and "-p" not in plain
        assert not any("rerun" in a for a in plain) and steps[1].env is None

    async def test_fetch_coverage_adds_one_download_per_shard(self):
        folder = Path(tempfile.mkdtemp(prefix="shard-cov-"))
        self.addCleanup(shutil.rmtree, folder, True)
        (folder / "92").mkdir()
        for i in (1, 2, 3):
            (folder / "92" / f"shard-{i}.coverage").write_bytes(b"data")
        added = []
        self.setup_step(FetchShardCoverage(reports_dir=str(folder)))
        self.build.addStepsAfterCurrentStep = added.extend
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": "coverage data of 3 shards"})
        await self.run_step()
        assert [s.name for s in added] == [f"download-shard-{i}-coverage" for i in (1, 2, 3)]
