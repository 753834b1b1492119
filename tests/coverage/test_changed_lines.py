"""Changed lines of base..head, read from real git repositories."""
from __future__ import annotations

import os

import pytest
from greenlight.coverage.changed_lines import changed_lines, parse_unified_zero
from greenlight.errors import UsageError

BODY = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12))


def lines_of(repo, base, head=None, ext=(".py",)):
    _, changes = changed_lines(repo.path, base, head or repo.head(), ext)
    return {c.path: (sorted(c.lines), c.old_path) for c in changes}


def test_added_file_counts_every_line(make_repo):
    repo = make_repo()
    base = repo.commit("empty")
    repo.write("pkg/new.py", "a = 1\n\nb = 2\n")
    repo.commit("add")
    assert lines_of(repo, base) == {"pkg/new.py": ([1, 2, 3], None)}


def test_modified_lines_only_and_deleted_lines_ignored(make_repo):
    repo = make_repo()
    repo.write("m.py", "a = 1\nb = 2\nc = 3\nd = 4\n")
    base = repo.commit("one")
    repo.write("m.py", "a = 1\nB = 2\nd = 4\ne = 5\n")   # b modified, c deleted, e added
    repo.commit("two")
    assert lines_of(repo, base) == {"m.py": ([2, 4], None)}


def test_rename_without_edits_has_no_new_lines(make_repo):
    repo = make_repo()
    repo.write("old.py", BODY)
    base = repo.commit("one")
    repo.git("mv", "old.py", "new.py")
    repo.commit("move")
    assert lines_of(repo, base) == {}


def test_rename_with_edits_counts_only_edited_lines(make_repo):
    repo = make_repo()
    repo.write("old.py", BODY)
    base = repo.commit("one")
    repo.git("mv", "old.py", "pkg_new.py")
    repo.write("pkg_new.py", BODY.replace("return x + 5", "return x * 5"))
    repo.commit("move and edit")
    assert lines_of(repo, base) == {"pkg_new.py": ([17], "old.py")}


def test_deleted_and_binary_and_non_python_files_are_ignored(make_repo):
    repo = make_repo()
    repo.write("gone.py", "x = 1\n")
    repo.write("keep.py", "x = 1\n")
    base = repo.commit("one")
    os.remove(repo.path / "gone.py")
    repo.write("blob.py", b"\x00\x01\x02binary\x00")
    repo.write("README.md", "hello\n")
    repo.commit("two")
    assert lines_of(repo, base) == {}
    assert lines_of(repo, base, ext=()) == {"README.md": ([1], None)}


def test_merge_in_range_brings_both_sides_but_not_base(make_repo):
    repo = make_repo()
    repo.write("a.py", "x = 1\n")
    base = repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.py", "y = 2\n")
    repo.commit("feature work")
    repo.git("checkout", "-q", "main")
    repo.write("a.py", "x = 1\nz = 3\n")
    repo.commit("main work")
    repo.git("merge", "-q", "--no-edit", "feature")
    assert lines_of(repo, base) == {"a.py": ([2], None), "feature.py": ([1], None)}
    # a push whose base is the merge's first parent sees only what the merge brought in
    assert lines_of(repo, repo.git("rev-parse", "HEAD^1")) == {"feature.py": ([1], None)}


def test_first_push_compares_with_the_empty_tree(make_repo):
    repo = make_repo()
    repo.write("a.py", "x = 1\ny = 2\n")
    repo.commit("first")
    rng, changes = changed_lines(repo.path, None, repo.head())
    assert rng.base is None and rng.sole_commit == repo.head()
    assert [(c.path, sorted(c.lines)) for c in changes] == [("a.py", [1, 2])]
    _, zero = changed_lines(repo.path, "0" * 40, repo.head())
    assert zero == changes


def test_non_utf8_path_round_trips_to_the_disk(make_repo):
    repo = make_repo()
    base = repo.commit("empty")
    raw = b"caf\xe9 \"x\".py"
    repo.write(raw, "a = 1\n")
    repo.commit("latin-1 name")
    (path, (lines, _)), = lines_of(repo, base).items()
    assert os.fsencode(path) == raw and lines == [1]
    assert (repo.path / path).read_text() == "a = 1\n"


def test_force_push_uses_the_merge_base(make_repo):
    repo = make_repo()
    repo.write("a.py", "x = 1\n")
    root = repo.commit("root")
    repo.write("a.py", "x = 1\nold = 2\n")
    old_tip = repo.commit("old tip")
    repo.git("reset", "-q", "--hard", root)
    repo.write("b.py", "new = 1\n")
    repo.commit("rewritten")
    assert lines_of(repo, old_tip) == {"b.py": ([1], None)}


def test_unknown_sha_is_a_usage_error(make_repo):
    repo = make_repo()
    repo.commit("one")
    with pytest.raises(UsageError, match="unknown base revision 'deadbeef'"):
        changed_lines(repo.path, "deadbeef", repo.head())


def test_parser_reads_quoted_names_and_hunk_counts():
    diff = (b'diff --git "a/t\\tab.py" "b/t\\tab.py"\n'
            b'--- "a/t\\tab.py"\n+++ "b/t\\303\\251ab.py"\n'
            b"@@ -1,0 +2,3 @@\n+a\n+b\n+c\n@@ -9 +12 @@\n-x\n+y\n@@ -20,2 +24,0 @@\n-p\n-q\n")
    (change,) = parse_unified_zero(diff)
    assert change.path == "t\u00e9ab.py" and change.old_path == "t\tab.py"
    assert sorted(change.lines) == [2, 3, 4, 12]
