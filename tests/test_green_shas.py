"""Last green only moves forward: builds finishing out of order, force pushes, racing builds.
Ancestry comes from real repositories (gitpython through greenlight.git)."""
from __future__ import annotations

import random
import shutil
import tempfile
import threading
from pathlib import Path

from buildbot.process.results import SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell, TestBuildStepMixin
from twisted.trial import unittest

from greenlight.git import is_ancestor, open_repo
from greenlight.green_shas import advance_green, last_green, moves_forward
from greenlight.steps.base import RecordGreen
from tests.conftest import Repo


def linear_history(repo: Repo, n: int) -> list[str]:
    shas = []
    for i in range(n):
        repo.write("app.py", f"v = {i}\n")
        shas.append(repo.commit(f"c{i}"))
    return shas


def ancestry(repo: Repo):
    git_repo = open_repo(repo.path)
    return lambda a, b: is_ancestor(git_repo, a, b)


def test_an_older_build_finishing_last_does_not_move_last_green_back(make_repo, tmp_path):
    repo = make_repo()
    older, newer = linear_history(repo, 2)
    green = tmp_path / "green.json"
    assert advance_green(green, "main", newer, ancestry(repo)) == (True, None)
    assert advance_green(green, "main", older, ancestry(repo)) == (False, newer)
    assert last_green(green, "main") == newer
    newest = linear_history(repo, 1)[0]
    assert advance_green(green, "main", newest, ancestry(repo)) == (True, newer)
    assert last_green(green, "main") == newest


def test_a_force_pushed_branch_moves_on_from_the_rewritten_green(make_repo, tmp_path):
    repo = make_repo()
    fork, rewritten = linear_history(repo, 2)
    repo.git("reset", "-q", "--hard", fork)
    repo.write("other.py", "o = 1\n")
    replacement = repo.commit("rewritten history")
    green = tmp_path / "green.json"
    advance_green(green, "main", rewritten, ancestry(repo))
    assert moves_forward(rewritten, replacement, ancestry(repo))
    assert advance_green(green, "main", replacement, ancestry(repo)) == (True, rewritten)
    assert not moves_forward(replacement, fork, ancestry(repo))   # still never backwards


def test_builds_racing_to_record_leave_the_newest(make_repo, tmp_path):
    repo = make_repo()
    shas = linear_history(repo, 12)
    green = tmp_path / "green.json"
    finishing = shas[:]
    random.Random(7).shuffle(finishing)
    threads = [threading.Thread(target=advance_green, args=(green, "main", sha, ancestry(repo)))
               for sha in finishing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert last_green(green, "main") == shas[-1]


def test_branches_are_independent(make_repo, tmp_path):
    repo = make_repo()
    first, second = linear_history(repo, 2)
    green = tmp_path / "green.json"
    advance_green(green, "main", second, ancestry(repo))
    assert advance_green(green, "feature", first, ancestry(repo)) == (True, None)
    assert (last_green(green, "main"), last_green(green, "feature")) == (second, first)


class RecordGreenOutOfOrderTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    """Two verify builds of one branch finish out of order: the newer commit's build records
    first, then the older one's; the step asks the worker's checkout about ancestry."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="record-green-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        (self.tmp / "repo").mkdir()
        self.repo = Repo(self.tmp / "repo")
        self.older, self.newer = linear_history(self.repo, 2)
        self.green = self.tmp / "green-shas.json"
        self.setup_test_reactor()
        return self.setup_test_build_step()

    def expect_ancestry(self, ancestor: str, descendant: str):
        rc = 0 if ancestry(self.repo)(ancestor, descendant) else 1   # what git says there
        return ExpectShell(workdir="wkdir", log_environ=False, command=[
            "git", "merge-base", "--is-ancestor", ancestor, descendant]).exit(rc)

    def start(self, revision: str):
        self.setup_step(RecordGreen(green_file=str(self.green), name="record_green"))
        self.build.results = SUCCESS
        self.build.setProperty("got_revision", revision, "test")
        self.build.setProperty("branch", "main", "test")

    async def test_the_older_build_finishing_last_keeps_the_newer_green(self):
        advance_green(self.green, "main", self.newer, ancestry(self.repo))  # newer build done
        self.start(self.older)
        self.expect_commands(self.expect_ancestry(self.newer, self.older),
                             self.expect_ancestry(self.older, self.newer))
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary(
            {"step": f"last green stays {self.newer[:10]}: {self.older[:10]} is older"})
        await self.run_step()
        assert last_green(self.green, "main") == self.newer

    async def test_a_newer_build_moves_last_green(self):
        advance_green(self.green, "main", self.older, ancestry(self.repo))
        self.start(self.newer)
        self.expect_commands(self.expect_ancestry(self.older, self.newer),
                             self.expect_ancestry(self.newer, self.older))
        self.expect_outcome(result=SUCCESS)
        self.expect_result_summary({"step": f"last green {self.newer[:10]}"})
        await self.run_step()
        assert last_green(self.green, "main") == self.newer
