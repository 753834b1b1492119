"""greenlight.git.history: parsing git's output, and the questions asked of a real repository."""
from __future__ import annotations

from datetime import datetime, timezone

from greenlight.git.history import CommitInfo, GitHistory, parse_ignore_revs, parse_log


def test_ignore_revs_file_comments_and_blank_lines():
    text = "# black\n\n1234567890abcdef1234567890abcdef12345678  # reformat\nnot-a-sha\n  abcdef1\n"
    assert parse_ignore_revs(text) == ["1234567890abcdef1234567890abcdef12345678", "abcdef1"]


def test_a_delete_only_hunk_is_a_deletion_not_a_rename():
    log = ("\x1e" + "\x1f".join(["a" * 40, "b" * 40, "Ann", "a@x", "1700000000", "cut"]) + "\x1f"
           "\ndiff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -11,4 +10,0 @@ def f\n"
           "-x\n-y\n-z\n-w\n")
    commit = parse_log(log)[0]
    assert commit.changed == {"m.py": []} and commit.deleted == {"m.py": [10]}
    assert commit.describe_change("m.py") == "lines deleted after line 10"
    renamed = CommitInfo(sha="c", parents=[], author="", email="", message="",
                         authored_at=datetime.now(timezone.utc), changed={"n.py": [(3, 5)]},
                         renamed_from={"n.py": "o.py"})
    assert renamed.describe_change("n.py") == "lines 3-5; renamed from o.py"


def test_tags_come_oldest_first_at_their_tag_time(make_repo):
    repo = make_repo("tags")
    repo.write("a.py", "a = 1\n")
    first = repo.commit("one", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    repo.write("a.py", "a = 2\n")
    second = repo.commit("two", GIT_COMMITTER_DATE="2026-01-02T00:00:00Z")
    repo.git("tag", "v2", second)
    repo.git("tag", "-a", "-m", "late tag of the first", "v1", first)   # tagged now
    history = GitHistory(repo.path)
    points = history.tags("v*")
    assert [(p.name, p.sha) for p in points] == [("v2", second), ("v1", first)]
    assert points[0].at == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert points[1].previous == second
    assert history.is_ancestor(first, second) and not history.is_ancestor(second, first)
    history.close()
