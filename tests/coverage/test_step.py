"""CoverageGate with Buildbot's own step harness; the worker's files are a real CLI run's output."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from buildbot.process import remotetransfer
from buildbot.process.results import FAILURE, SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectRemoteRef, ExpectShell, ExpectUploadFile, TestBuildStepMixin
from greenlight.steps.coverage_gate import CoverageGate, gate_arguments
from twisted.trial import unittest

from tests.conftest import Repo, child_env
from tests.coverage.conftest import coverage_run


def real_reports(tmp: Path, tested: bool) -> tuple[str, str, dict[str, str]]:
    """Run the real CLI on a real repository; return (base, head, {file: content})."""
    (tmp / "repo").mkdir()
    repo = Repo(tmp / "repo")
    repo.write("shop.py", "def price(x):\n    return x\n")
    repo.write("run_tests.py", "import shop\nshop.price(1)\n")
    base = repo.commit("base")
    repo.write("shop.py", "def price(x):\n    return x\n\n\ndef tax(x):\n    return x * 2\n")
    if tested:
        repo.write("run_tests.py", "import shop\nshop.price(1)\nshop.tax(1)\n")
    head = repo.commit("tax")
    coverage_run(repo.path, "run_tests.py")
    args = gate_arguments(base, head, ".coverage", 100.0)
    out = subprocess.run([sys.executable, "-m", "greenlight.cli.coverage", *args[1:]],
                         cwd=repo.path, env=child_env(), capture_output=True, text=True,
                         check=False)
    assert out.returncode == (0 if tested else 1), out.stderr
    files = {name: (repo.path / name).read_text() for name in
             ("greenlight-coverage.json", "greenlight-coverage.md", "greenlight-coverage.html")}
    return base, head, files


def kept_report(files: dict[str, str]) -> bytes:
    """The report as the step keeps it in build data."""
    return json.dumps(json.loads(files["greenlight-coverage.json"]), indent=2).encode()


class CoverageGateTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="coverage-gate-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.setup_test_reactor()
        return self.setup_test_build_step()

    def expect_run(self, base, head, files, rc):
        self.expect_build_data("greenlight-coverage", kept_report(files), "CoverageGate")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", *gate_arguments(base, head, ".coverage", 100.0)])
            .exit(rc),
            *[ExpectUploadFile(workersrc=name, workdir="wkdir", blocksize=32768, maxsize=None,
                               writer=ExpectRemoteRef(remotetransfer.StringFileWriter))
              .upload_string(files[name]).exit(0)
              for name in ("greenlight-coverage.json", "greenlight-coverage.md",
                           "greenlight-coverage.html")])

    async def test_untested_push_fails_naming_the_worst_file(self):
        base, head, files = real_reports(self.tmp, tested=False)
        self.setup_step(CoverageGate())
        self.build.setProperty("greenlight_base", base, "test")
        self.build.setProperty("got_revision", head, "test")
        self.expect_run(base, head, files, rc=1)
        self.expect_outcome(result=FAILURE)
        self.expect_property("coverage_new_lines", 2, "coverage")
        self.expect_property("coverage_covered", 1, "coverage")
        self.expect_property("coverage_percent", 50.0, "coverage")
        self.expect_result_summary({"step": json.loads(files["greenlight-coverage.json"])[
            "summary"]})
        self.expect_log_file("report.md", files["greenlight-coverage.md"])
        await self.run_step()
        assert "worst: shop.py 50.00%" in json.loads(files["greenlight-coverage.json"])["summary"]

    async def test_tested_push_passes(self):
        base, head, files = real_reports(self.tmp, tested=True)
        self.setup_step(CoverageGate())
        self.build.setProperty("greenlight_base", base, "test")
        self.build.setProperty("got_revision", head, "test")
        self.expect_run(base, head, files, rc=0)
        self.expect_outcome(result=SUCCESS)
        self.expect_property("coverage_percent", 100.0, "coverage")
        await self.run_step()
        assert json.loads(files["greenlight-coverage.json"])["passed"] is True


    def expect_upload(self, name, content):
        return ExpectUploadFile(workersrc=name, workdir="wkdir", blocksize=32768, maxsize=None,
                                writer=ExpectRemoteRef(remotetransfer.StringFileWriter)
                                ).upload_string(content).exit(0)

    async def test_the_test_steps_report_is_used_without_running_the_gate_again(self):
        base, head, files = real_reports(self.tmp, tested=False)
        self.setup_step(CoverageGate(tests_report="greenlight-coverage.json"))
        self.build.setProperty("greenlight_base", base, "test")
        self.build.setProperty("got_revision", head, "test")
        self.expect_build_data("greenlight-coverage", kept_report(files), "CoverageGate")
        self.expect_commands(*[self.expect_upload(name, files[name]) for name in (
            "greenlight-coverage.json", "greenlight-coverage.md", "greenlight-coverage.html")])
        self.expect_outcome(result=FAILURE)
        self.expect_property("coverage_percent", 50.0, "coverage")
        self.expect_result_summary({"step": json.loads(files["greenlight-coverage.json"])[
            "summary"]})
        await self.run_step()

    async def _not_trusted(self, step, prop_base):
        base, head, files = real_reports(self.tmp, tested=True)
        self.setup_step(step)
        if prop_base:
            self.build.setProperty("greenlight_base", base, "test")
        self.build.setProperty("got_revision", head, "test")
        run = gate_arguments(base if prop_base else None, head, ".coverage",
                             float(step.fail_under))
        self.expect_build_data("greenlight-coverage", kept_report(files), "CoverageGate")
        self.expect_commands(
            self.expect_upload("greenlight-coverage.json", files["greenlight-coverage.json"]),
            ExpectShell(workdir="wkdir", log_environ=False, command=["greenlight", *run])
            .exit(0),
            *[self.expect_upload(name, files[name]) for name in (
                "greenlight-coverage.json", "greenlight-coverage.md",
                "greenlight-coverage.html")])
        self.expect_outcome(result=SUCCESS)
        await self.run_step()

    async def test_a_report_made_for_another_threshold_is_not_trusted(self):
        await self._not_trusted(CoverageGate(tests_report="greenlight-coverage.json",
                                             fail_under=90.0), prop_base=True)

    async def test_a_report_of_another_range_is_not_trusted(self):
        await self._not_trusted(CoverageGate(tests_report="greenlight-coverage.json"),
                                prop_base=False)


def test_first_push_passes_no_base():
    assert "--base" not in gate_arguments(None, "abc", ".coverage", 90)
    assert "--base" not in gate_arguments("0" * 40, "abc", ".coverage", 90)
    assert gate_arguments("b" * 40, "abc", "d", 90)[:3] == ["coverage", "--base", "b" * 40]
    assert gate_arguments(None, "abc", "d", 90, (".py", ".pyx"), combine=False)[-4:] == [
        "--ext", ".py", "--ext", ".pyx"]
    assert gate_arguments(None, "abc", "d", 90)[-1] == "--combine"
