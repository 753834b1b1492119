"""The pre-push hook's engine on real clones: the base of each pushed ref, and checks that fail
closed (a check that cannot be imported stops the push with the error)."""
from __future__ import annotations

import io
from pathlib import Path

import git as gitpython
import pytest

from greenlight.push import pre_push
from greenlight.push.pre_push import PushedRef, base_of

ZERO = "0" * 40


@pytest.fixture
def clone(make_repo, tmp_path):
    origin = make_repo("origin")
    origin.write("a.py", "a = 1\n")
    first = origin.commit("first")
    path = tmp_path / "clone"
    gitpython.Repo.clone_from(str(origin.path), str(path))
    repo = gitpython.Repo(path)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Ada")
        config.set_value("user", "email", "ada@example.com")
        config.set_value("commit", "gpgsign", "false")
    return origin, repo, first


def _commit(repo: gitpython.Repo, name: str) -> str:
    Path(repo.working_tree_dir, name).write_text("x = 1\n")
    repo.index.add([name])
    return repo.index.commit(name).hexsha


def test_base_is_the_remote_tip_or_the_fork_point(clone):
    origin, repo, first = clone
    head = _commit(repo, "b.py")
    assert base_of(repo, PushedRef("refs/heads/main", head, "refs/heads/main", first),
                   "origin") == first
    assert base_of(repo, PushedRef("refs/heads/new", head, "refs/heads/new", ZERO),
                   "origin") == first


def test_a_remote_sha_not_fetched_counts_from_the_fork_point(clone):
    origin, repo, first = clone
    origin.write("other.py", "o = 1\n")
    unfetched = origin.commit("someone else's push")
    head = _commit(repo, "b.py")
    assert base_of(repo, PushedRef("refs/heads/main", head, "refs/heads/main", unfetched),
                   "origin") == first


def test_a_check_that_cannot_be_imported_stops_the_push(clone, monkeypatch):
    _, repo, first = clone
    head = _commit(repo, "b.py")
    monkeypatch.setattr(pre_push, "CHECKS", (
        ("greenlight.prepush.schema", True, "greenlight.no_such_check", "schema review",
         "GREENLIGHT_SCHEMA_OVERRIDE"),))
    with pytest.raises(ModuleNotFoundError, match="greenlight.no_such_check"):
        pre_push.run(repo, "origin", f"refs/heads/main {head} refs/heads/main {first}\n",
                     out=io.StringIO())


def test_deleting_a_remote_branch_checks_nothing(clone, monkeypatch):
    _, repo, first = clone
    monkeypatch.setattr(pre_push, "CHECKS", (
        ("greenlight.prepush.schema", True, "greenlight.no_such_check", "schema review",
         "GREENLIGHT_SCHEMA_OVERRIDE"),))
    assert pre_push.run(repo, "origin", f"(delete) {ZERO} refs/heads/old {first}\n",
                        out=io.StringIO()) == 0
