"""SchemaReview with Buildbot's step harness; the worker's report is a real CLI run's, and the
step's text log must be exactly what the CLI prints (the engine's one rendering)."""
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
from greenlight.steps.schema_review import JSON_FILE, SchemaReview, check_arguments
from twisted.trial import unittest

from tests.conftest import Repo

# Buildbot's fake data layer wants identifiers for step names (the real one takes spaces).
NAME = "schema_review"
SIZES = {"tables": {"users": {"rows": 5_000_000, "bytes": 3 << 30}}}


def cli(repo: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greenlight.cli.main", *args], cwd=repo,
                          capture_output=True, text=True, check=False)


def real_run(tmp: Path, sql: str) -> tuple[str, str, str, str, int]:
    """(base, head, JSON report, the CLI's text output, exit status) of a real review."""
    (tmp / "repo").mkdir()
    repo = Repo(tmp / "repo")
    repo.write("sizes.json", json.dumps(SIZES))
    repo.write("migrations/0001.sql", "CREATE TABLE users (id INT PRIMARY KEY, name TEXT);\n")
    base = repo.commit("base")
    repo.write("migrations/0002.sql", sql)
    head = repo.commit("change")
    args = check_arguments("migrations", "mysql", base, head, sizes="sizes.json")
    out = cli(repo.path, args)
    assert out.returncode in (0, 1), out.stderr
    text_args = [a if a != "json" else "text" for a in args]
    text_args[text_args.index("--output") + 1] = "text-report.txt"
    text = cli(repo.path, text_args).stdout
    return base, head, (repo.path / JSON_FILE).read_text(), text, out.returncode


class SchemaReviewStepTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="schema-step-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.setup_test_reactor()
        return self.setup_test_build_step()

    def expect_review(self, sql: str) -> tuple[dict, str]:
        base, head, report, text, rc = real_run(self.tmp, sql)
        self.setup_step(SchemaReview(sizes="sizes.json", name=NAME))
        self.build.setProperty("greenlight_base", base, "test")
        self.build.setProperty("got_revision", head, "test")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", *check_arguments("migrations", "mysql", base,
                                                                head, sizes="sizes.json")])
            .exit(rc),
            ExpectUploadFile(workersrc=JSON_FILE, workdir="wkdir", blocksize=32768,
                             maxsize=None, writer=ExpectRemoteRef(
                                 remotetransfer.StringFileWriter))
            .upload_string(report).exit(0))
        parsed = json.loads(report)
        self.expect_build_data("greenlight-schema", json.dumps(parsed, indent=2).encode(),
                               "SchemaReview")
        self.expect_log_file("schema review", text)
        return parsed, text

    async def test_a_locking_alter_on_a_large_table_fails_with_the_engines_text(self):
        report, text = self.expect_review("ALTER TABLE users MODIFY name VARCHAR(10);\n")
        assert "NEEDS REVIEW" in text
        self.expect_outcome(result=FAILURE)
        self.expect_property("schema_needs_review", True, NAME)
        self.expect_result_summary({"step": "needs schema review: 1 statement(s)"})
        await self.run_step()

    async def test_a_safe_migration_passes(self):
        self.expect_review("CREATE TABLE orgs (id INT PRIMARY KEY);\n")
        self.expect_outcome(result=SUCCESS)
        self.expect_property("schema_needs_review", False, NAME)
        await self.run_step()

    async def test_bad_input_fails_with_the_clis_reason(self):
        self.setup_step(SchemaReview(name=NAME))
        self.build.setProperty("got_revision", "a" * 40, "test")
        self.expect_commands(
            ExpectShell(workdir="wkdir", log_environ=False,
                        command=["greenlight", *check_arguments("migrations", "mysql", None,
                                                                "a" * 40)])
            .stderr("greenlight schema: unknown dialect\n").exit(2))
        self.expect_outcome(result=FAILURE)
        self.expect_result_summary({"step": "schema_review: bad input: greenlight schema: "
                                            "unknown dialect"})
        await self.run_step()
