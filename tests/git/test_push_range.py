"""PushRange on real repositories: every shape a push takes, and the one all-zero rule."""
from __future__ import annotations

import os
import re
from pathlib import Path

import git
import pytest

from greenlight.errors import UsageError
from greenlight.git import (
    changed_paths,
    display_path,
    is_null_sha,
    open_repo,
    push_range,
    unified_diff,
)

ZERO = "0" * 40
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(make_repo):
    work = make_repo("work")
    work.write("app.py", "a = 1\n")
    work.write("notes.txt", "hello\n")
    work.commit("first")
    return work


def _open(work) -> git.Repo:
    return open_repo(work.path)


@pytest.mark.parametrize("sha, null", [
    (None, True), ("", True), (ZERO, True), ("0" * 64, True), ("0", True),
    ("0" * 39 + "1", False), ("a" * 40, False)])
def test_one_rule_for_the_null_sha(sha, null):
    assert is_null_sha(sha) is null


def test_no_other_definition_of_the_null_sha_in_the_product():
    pattern = re.compile(r"""["']0["']\s*\*\s*(40|64)|\^0[*+]\$|set\([^)]*\)\s*==\s*\{["']0["']\}""")
    offenders = []
    for folder in ("plugins", "schema_review", "master", "hooks"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and (path.suffix == ".py" or path.parent.name == "hooks"):
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if pattern.search(line) and path.name != "sha.py":
                        offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_plain_push_is_the_commits_since_the_old_tip(repo):
    first = repo.head()
    repo.write("app.py", "a = 2\n")
    second = repo.commit("two")
    repo.write("b.py", "b = 1\n")
    third = repo.commit("three")
    rng = push_range(_open(repo), first, third, ref="refs/heads/main")
    assert (rng.base, rng.head, rng.compared_with) == (first, third, first)
    assert rng.commits == (second, third)
    assert not (rng.first_push or rng.forced or rng.deleted)
    assert rng.branch == "main" and rng.rev_range == f"{first}..{third}"
    assert rng.new_code_base == first and rng.sole_commit is None
    assert changed_paths(_open(repo), rng) == ["app.py", "b.py"]


def test_first_push_compares_with_the_empty_tree(repo):
    rng = push_range(_open(repo), ZERO, repo.head())
    assert rng.first_push and rng.base is None and rng.from_empty_tree
    assert rng.new_code_base is None and rng.rev_range == repo.head()
    assert rng.commits == (repo.head(),) and rng.sole_commit == repo.head()
    assert changed_paths(_open(repo), rng) == ["app.py", "notes.txt"]


def test_new_branch_starts_where_it_forked(repo):
    fork = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.py", "f = 1\n")
    own = repo.commit("feature")
    rng = push_range(_open(repo), ZERO, own, ref="refs/heads/feature", others=[fork])
    assert rng.first_push and rng.compared_with == fork and rng.commits == (own,)
    assert changed_paths(_open(repo), rng) == ["feature.py"]


def test_new_branch_at_an_existing_tip_has_nothing_new(repo):
    rng = push_range(_open(repo), ZERO, repo.head(), others=[repo.head()])
    assert rng.commits == () and rng.compared_with == repo.head()
    assert changed_paths(_open(repo), rng) == []


def test_empty_push_has_no_commits_and_no_paths(repo):
    rng = push_range(_open(repo), repo.head(), repo.head())
    assert rng.commits == () and changed_paths(_open(repo), rng) == []
    assert unified_diff(_open(repo), rng) == b""


def test_force_push_counts_only_the_new_line(repo):
    fork = repo.head()
    repo.write("app.py", "a = 'old line'\n")
    old = repo.commit("old line")
    repo.git("reset", "-q", "--hard", fork)
    repo.write("new.py", "n = 1\n")
    new = repo.commit("rewritten")
    rng = push_range(_open(repo), old, new)
    assert rng.forced and rng.base == old and rng.compared_with == fork
    assert rng.commits == (new,) and changed_paths(_open(repo), rng) == ["new.py"]


def test_force_push_onto_unrelated_history_is_all_new(repo, make_repo):
    other = make_repo("other")
    other.write("x.py", "x = 1\n")
    other.commit("unrelated")
    repo.git("fetch", "-q", str(other.path), "main:unrelated")
    unrelated = repo.git("rev-parse", "unrelated")
    rng = push_range(_open(repo), repo.head(), unrelated)
    assert rng.forced and rng.from_empty_tree and rng.commits == (unrelated,)


def test_deletion_has_nothing_new(repo):
    rng = push_range(_open(repo), repo.head(), ZERO, ref="refs/heads/main")
    assert rng.deleted and rng.head is None and rng.base == repo.head()
    assert rng.commits == () and changed_paths(_open(repo), rng) == []


def test_unknown_shas_are_usage_errors_naming_them(repo):
    with pytest.raises(UsageError, match="unknown head revision 'b{40}'"):
        push_range(_open(repo), None, "b" * 40)
    with pytest.raises(UsageError, match="unknown base revision"):
        push_range(_open(repo), "c" * 40, repo.head())
    with pytest.raises(UsageError, match="not a head revision: '--output=x'"):
        push_range(_open(repo), None, "--output=x")


def test_not_a_repository_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not in a git repository"):
        open_repo(tmp_path, search_parent_directories=False)


def test_renames_deletions_and_binary_files(repo):
    first = repo.head()
    repo.git("mv", "app.py", "moved.py")
    repo.write("moved.py", "a = 1\nb = 2\n")
    repo.git("rm", "-q", "notes.txt")
    repo.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary\x00")
    head = repo.commit("rename, delete, binary")
    r = _open(repo)
    rng = push_range(r, first, head)
    assert changed_paths(r, rng) == ["app.py", "logo.png", "moved.py", "notes.txt"]
    assert changed_paths(r, rng, diff_filter="ACMR", renames=True) == ["logo.png", "moved.py"]
    diff = unified_diff(r, rng)
    assert b"rename from app.py" in diff and b"+b = 2" in diff
    assert b"notes.txt" not in diff                 # deletions bring no new lines
    assert b"Binary files /dev/null and b/logo.png differ" in diff


def test_merge_inside_the_range(repo):
    first = repo.head()
    repo.git("checkout", "-q", "-b", "side")
    repo.write("side.py", "s = 1\n")
    side = repo.commit("side")
    repo.git("checkout", "-q", "main")
    repo.write("main.py", "m = 1\n")
    main = repo.commit("main")
    repo.git("merge", "-q", "--no-edit", "side")
    merge = repo.head()
    rng = push_range(_open(repo), first, merge)
    assert set(rng.commits) == {side, main, merge} and rng.commits[-1] == merge
    assert changed_paths(_open(repo), rng) == ["main.py", "side.py"]


def test_non_utf8_paths_round_trip_and_display(repo):
    first = repo.head()
    raw = b"caf\xe9.py"
    repo.write(raw, "x = 1\n")
    head = repo.commit("latin-1 name")
    paths = changed_paths(_open(repo), push_range(_open(repo), first, head))
    assert paths == [os.fsdecode(raw)]
    assert (repo.path / paths[0]).read_text() == "x = 1\n"    # the name reaches the file
    assert display_path(paths[0]) == "caf\\xe9.py"


def test_commit_limit_keeps_the_newest(repo):
    first = repo.head()
    shas = []
    for n in range(3):
        repo.write("app.py", f"a = {n}\n")
        shas.append(repo.commit(f"c{n}"))
    rng = push_range(_open(repo), first, shas[-1], commit_limit=2)
    assert rng.commits == tuple(shas[1:]) and rng.sole_commit is None
