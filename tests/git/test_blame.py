"""greenlight.git.blame: who wrote lines in a pushed range, which commits touched which files."""
from __future__ import annotations

from greenlight.git import open_repo
from greenlight.git.blame import (
    Authorship,
    blame_lines_in_range,
    commit_authorship,
    commits_touching_files,
    line_ranges,
    range_has_merges,
)


def test_line_ranges_join_consecutive_lines():
    assert line_ranges([7, 1, 2, 3, 9, 8]) == ["1,3", "7,9"]
    assert line_ranges([]) == []


def test_blame_names_the_commit_of_the_range_that_wrote_each_line(make_repo):
    work = make_repo()
    work.write("a.py", "one\ntwo\nthree\n")
    base = work.commit("base", author="Old <old@x.org>")
    work.write("a.py", "one\nTWO\nthree\nfour\n")
    first = work.commit("edit two", author="Ada <ada@x.org>")
    work.write("a.py", "one\nTWO\nthree\nFOUR\n")
    second = work.commit("edit four", author="Bob <bob@x.org>")
    repo = open_repo(work.path)
    found = blame_lines_in_range(repo, f"{base}..{second}", "a.py", [1, 2, 4])
    assert found == {1: Authorship(base, "Old", "old@x.org", "base"),  # the range's boundary
                     2: Authorship(first, "Ada", "ada@x.org", "edit two"),
                     4: Authorship(second, "Bob", "bob@x.org", "edit four")}
    assert commit_authorship(repo, first) == found[2]
    assert commits_touching_files(repo, f"{base}..{second}") == {"a.py": [second, first]}
    assert range_has_merges(repo, f"{base}..{second}") is False


def test_a_merge_in_the_range_is_seen(make_repo):
    work = make_repo()
    base = work.commit("base")
    work.git("checkout", "-q", "-b", "side")
    work.write("s.txt", "side\n")
    work.commit("side")
    work.git("checkout", "-q", "main")
    work.write("m.txt", "main\n")
    work.commit("main")
    work.git("merge", "-q", "--no-edit", "side")
    repo = open_repo(work.path)
    assert range_has_merges(repo, f"{base}..HEAD") is True
    assert set(commits_touching_files(repo, f"{base}..HEAD")) == {"s.txt", "m.txt"}
