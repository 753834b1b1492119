"""greenlight.git.releases on a real repository: a release's files come from the commit, never
the work tree; old..new lists what a deploy ships; subjects skip shas the repository lost."""
from __future__ import annotations

from greenlight.git import open_repo
from greenlight.git.releases import commit_subjects, commits_between, export_tree

from tests.conftest import Repo


def test_export_commits_between_and_subjects(tmp_path):
    (tmp_path / "repo").mkdir()
    work = Repo(tmp_path / "repo")
    work.write("app.py", "v1\n")
    first = work.commit("first <b>release</b>\n\nbody")
    work.write("app.py", "v2\n")
    second = work.commit("second")
    work.write("notes.txt", "untracked, never exported\n")
    work.write(".gitignore", "")  # uncommitted change in the work tree
    repo = open_repo(work.path)

    export_tree(repo, first, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app.py"]
    assert (tmp_path / "out" / "app.py").read_text() == "v1\n"

    assert commits_between(repo, first, second) == [second]
    assert commits_between(repo, None, second) == [second]
    assert commits_between(repo, "f" * 40, second) == [second]  # an old release it lost
    assert commits_between(repo, second, second) == []

    lost = "e" * 40
    assert commit_subjects(repo, [first, second, lost]) == {
        first: "first <b>release</b>", second: "second"}
