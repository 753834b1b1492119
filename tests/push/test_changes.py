"""Change records built from ref updates, on real repositories (no master needed)."""
from __future__ import annotations

import git as gitpython
import pytest

from greenlight.push.changes import RefUpdate, change_for, parse_ref_updates, push_id

ZERO = "0" * 40


@pytest.fixture
def bare_and_work(make_repo, tmp_path):
    work = make_repo("work")
    work.write("a.py", "a = 1\n")
    first = work.commit("first")
    bare = tmp_path / "bare.git"
    work.git("clone", "-q", "--bare", str(work.path), str(bare))
    return gitpython.Repo(bare), work, first


def _push(work, bare_repo, refspec):
    work.git("push", "-q", "-f", bare_repo.git_dir, refspec)


def test_parse_rejects_garbage_with_line_number():
    with pytest.raises(ValueError, match="stdin line 2"):
        parse_ref_updates(f"{ZERO} {'a' * 40} refs/heads/x\nnot a line\n")


def test_normal_push_lists_commits_files_and_base(bare_and_work):
    bare, work, first = bare_and_work
    work.write("b.py", "b = 2\n")
    second = work.commit("second", author="Bea <bea@example.com>")
    work.write("a.py", "a = 3\n")
    third = work.commit("third")
    _push(work, bare, "main")
    change = change_for(bare, RefUpdate(first, third, "refs/heads/main"), "repo", "proj")
    assert change["revision"] == third and change["branch"] == "main"
    assert change["files"] == ["a.py", "b.py"]
    props = change["properties"]
    assert props["greenlight_commits"] == [second, third]
    assert props["greenlight_base"] == first and props["greenlight_forced"] is False
    assert props["greenlight_push_id"] == push_id(RefUpdate(first, third, "refs/heads/main"))


def test_new_branch_at_existing_commit_has_no_new_commits(bare_and_work):
    bare, work, first = bare_and_work
    work.git("branch", "side")
    _push(work, bare, "side")
    change = change_for(bare, RefUpdate(ZERO, first, "refs/heads/side"), "r", "p")
    assert change["properties"]["greenlight_commits"] == []
    assert change["properties"]["greenlight_base"] == first
    assert change["files"] == []


def test_new_branch_lists_only_its_own_commits(bare_and_work):
    bare, work, first = bare_and_work
    work.git("checkout", "-q", "-b", "feature")
    work.write("f.py", "f = 1\n")
    own = work.commit("feature work")
    _push(work, bare, "feature")
    change = change_for(bare, RefUpdate(ZERO, own, "refs/heads/feature"), "r", "p")
    assert change["properties"]["greenlight_commits"] == [own]
    assert change["files"] == ["f.py"]


def test_force_push_reports_forced_and_diffs_from_merge_base(bare_and_work):
    bare, work, first = bare_and_work
    work.write("x.py", "x\n")
    old = work.commit("to be rewritten")
    _push(work, bare, "main")
    work.git("reset", "-q", "--hard", first)
    work.write("y.py", "y\n")
    new = work.commit("rewritten")
    _push(work, bare, "+main")
    change = change_for(bare, RefUpdate(old, new, "refs/heads/main"), "r", "p")
    assert change["properties"]["greenlight_forced"] is True
    assert change["properties"]["greenlight_base"] == first
    assert change["files"] == ["y.py"]


def test_deletion_and_tags_are_ignored(bare_and_work):
    bare, _, first = bare_and_work
    assert change_for(bare, RefUpdate(first, ZERO, "refs/heads/main"), "r", "p") is None
    assert change_for(bare, RefUpdate(ZERO, first, "refs/tags/v1"), "r", "p") is None


def test_non_utf8_and_binary_file_names_survive(bare_and_work):
    bare, work, first = bare_and_work
    name = b"caf\xe9 \xff.bin"
    work.write(name, b"\x00\x01\x02")
    new = work.commit("binary")
    _push(work, bare, "main")
    change = change_for(bare, RefUpdate(first, new, "refs/heads/main"), "r", "p")
    assert change["files"] == ["caf\\xe9 \\xff.bin"]
