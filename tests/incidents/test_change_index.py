"""The index of first-parent changes answers what git's per-file walk answers (a rename, a merge,
a deleted file, a whitespace-only change), catches up a missing range, and is filled where
deploys are recorded."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from greenlight.git.history import GitHistory, forget_shared_answers
from greenlight.incidents import Incident, build_report
from greenlight.incidents import change_index as ci
from greenlight.incidents.change_index import ChangeIndex, index_deploys

from .conftest import T0, logic_source, trace_for


def _history(repo, tmp_path):
    """A small history with what the walk must see through."""
    repo.write("app/logic.py", logic_source())
    repo.write("app/gone.py", logic_source(lines=5))
    repo.write("README", "readme\n")
    root = repo.commit("base", author="Ann <ann@x>")
    repo.write("app/logic.py", logic_source({3: "value_3 = 'three'", 20: "value_20 = 1 / 0"}))
    repo.commit("edit 3 and 20", author="Bob <bob@x>")
    repo.git("mv", "app/logic.py", "app/rules.py")
    repo.write("app/rules.py", logic_source({3: "value_3 = 'three'", 20: "value_20 = 1 / 0",
                                             30: "value_30 = 'moved'"}))
    renamed = repo.commit("rename logic -> rules", author="Cy <cy@x>")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app/rules.py", logic_source({3: "value_3 = 'three'", 20: "value_20 = 1 / 0",
                                             30: "value_30 = 'moved'", 10: "value_10 = 'f'"}))
    repo.commit("feature edits line 10", author="Fay <fay@x>")
    repo.git("checkout", "-q", "main")
    repo.write("README", "readme, again\n")
    repo.commit("docs", author="Dan <dan@x>")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    repo.git("rm", "-q", "app/gone.py")
    repo.write("app/rules.py", logic_source({3: "value_3 = 'three'", 20: "value_20 = 1 / 0",
                                             30: "value_30 = 'moved'", 10: "value_10 = 'f'",
                                             15: "value_15  =  15"}))  # whitespace only
    repo.commit("delete gone.py, respace 15", author="Eve <eve@x>")
    repo.write("app/rules.py", logic_source({3: "value_3 = 'three'", 20: "value_20 = 1 / 0",
                                             30: "value_30 = 'moved'", 10: "value_10 = 'f'",
                                             15: "value_15  =  15", 38: "value_38 = 0"}))
    head = repo.commit("edit 38", author="Gus <gus@x>")
    return root, renamed, head


def _engine(tmp_path):
    return create_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")


def _walk_and_index(repo, engine, sha, path, lines):
    """Blame by git's walk, then by the index (git's answers are shared in the process: each is
    asked with nothing cached)."""
    forget_shared_answers()
    walk = GitHistory(repo.path)
    by_walk = walk.blame_lines(sha, path, lines)
    forget_shared_answers()
    indexed = GitHistory(repo.path, changes=ChangeIndex(engine))
    return walk, indexed, by_walk, indexed.blame_lines(sha, path, lines)


def test_the_index_answers_what_the_walk_answers_through_a_rename_a_merge_and_a_deletion(
        make_repo, tmp_path):
    repo = make_repo("shop")
    root, renamed, head = _history(repo, tmp_path)
    engine = _engine(tmp_path)
    assert index_deploys(engine, repo.path, [head]) is None
    lines = list(range(1, 41))
    walk, indexed, by_walk, by_index = _walk_and_index(repo, engine, head, "app/rules.py", lines)
    assert by_index == by_walk
    authors = {n: indexed.commit(hit.commit).author for n, hit in by_index.items()}
    assert authors[10] == "Fay"            # the merged branch's commit, not the merge
    assert authors[20] == "Bob"            # before the rename, in app/logic.py
    assert authors[30] == "Cy" and authors[38] == "Gus" and authors[1] == "Ann"
    assert authors[15] == "Ann"            # a whitespace-only change is seen through (-w)
    # The file's history from the index is the walk's, less changes with no -w hunk.
    forget_shared_answers()
    walked = GitHistory(repo.path).file_history(head, "app/rules.py")
    assert any(not c.hunks for c in walked)                   # the whitespace-only change
    forget_shared_answers()
    from_index = indexed.file_history(head, "app/rules.py")
    assert from_index == [c for c in walked if c.hunks]
    assert any(len(c.parents) == 2 for c in from_index)      # the merge is in it
    # The deleted file: gone at head, its history up to the deletion at the commit before.
    before = repo.git("rev-parse", "HEAD~2")
    assert indexed.blame_lines(head, "app/gone.py", [1]) == {}
    deletion = indexed.file_history(repo.git("rev-parse", "HEAD~1"), "app/gone.py")
    assert deletion[0].hunks == ((1, 5, 0, 0),) and deletion[-1].sha == root
    _, _, gone_walk, gone_index = _walk_and_index(repo, engine, before, "app/gone.py", [1, 5])
    assert gone_index == gone_walk and set(gone_index) == {1, 5}
    # What a deploy's range shipped: the same commits, described the same way.
    for previous, sha in ((root, head), (renamed, head), (None, renamed)):
        forget_shared_answers()                  # each asked with nothing cached
        by_git = GitHistory(repo.path).commits_between(previous, sha)
        forget_shared_answers()
        from_index = GitHistory(repo.path, changes=ChangeIndex(engine))
        assert from_index.changes.commits_between(from_index, previous, sha) == by_git
        assert from_index.commits_between(previous, sha) == by_git and by_git
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ci.change_commits)).scalar() == 7


def test_the_answers_come_from_the_index_not_from_git(make_repo, tmp_path):
    repo = make_repo("shop")
    _, _, head = _history(repo, tmp_path)
    engine = _engine(tmp_path)
    index_deploys(engine, repo.path, [head])
    # Take the head commit's change of rules.py out of the index: the report's answer
    # follows the index (line 38 then reads as the base's), not git.
    root = repo.git("rev-list", "--max-parents=0", "HEAD")
    with engine.begin() as conn:
        conn.execute(ci.change_files.delete().where(ci.change_files.c.sha == head))
    forget_shared_answers()
    indexed = GitHistory(repo.path, changes=ChangeIndex(engine))
    assert indexed.blame_lines(head, "app/rules.py", [38])[38].commit == root
    forget_shared_answers()
    assert GitHistory(repo.path).blame_lines(head, "app/rules.py", [38])[38].commit == head


def test_a_missing_range_is_caught_up_and_a_long_one_falls_back_to_the_walk(
        make_repo, tmp_path, monkeypatch):
    repo = make_repo("shop")
    _, renamed, _ = _history(repo, tmp_path)
    engine = _engine(tmp_path)
    index_deploys(engine, repo.path, [renamed])          # deploys recorded up to the rename
    index = ChangeIndex(engine)
    history = GitHistory(repo.path)
    head = repo.head()
    assert index.missing(history, head) == (4, renamed)   # docs, merge, delete, edit 38
    # A report catches up the missing range itself and answers as the walk does.
    walk, indexed, by_walk, by_index = _walk_and_index(repo, engine, head, "app/rules.py",
                                                       [10, 20, 38])
    assert by_index == by_walk
    assert index.missing(history, head) == (0, head)
    with engine.connect() as conn:
        infos = {s for (s,) in conn.execute(select(ci.change_infos.c.sha))}
    assert repo.git("rev-parse", "feature") in infos     # the merged branch's commit too
    # More missing than a report may index: the walk answers and nothing is written.
    repo.write("app/rules.py", logic_source({1: "value_1 = 'new'"}))
    newest = repo.commit("one more")
    monkeypatch.setattr(ci, "LAZY_LIMIT", 0)
    forget_shared_answers()
    fallback = GitHistory(repo.path, changes=ChangeIndex(engine))
    assert fallback.changes.file_history(fallback, newest, "app/rules.py") is None
    hit = fallback.blame_lines(newest, "app/rules.py", [1])[1]
    assert hit.commit == newest
    assert index.missing(history, newest) == (1, head)


def test_since_off_the_first_parent_line_is_left_to_git(make_repo, tmp_path):
    repo = make_repo("shop")
    root, _, head = _history(repo, tmp_path)
    engine = _engine(tmp_path)
    index_deploys(engine, repo.path, [head])
    history = GitHistory(repo.path, changes=ChangeIndex(engine))
    feature = repo.git("rev-parse", "feature")
    assert history.changes.file_history(history, head, "app/rules.py", since=feature) is None
    on_line = history.changes.file_history(history, head, "app/rules.py", since=root)
    assert on_line and all(c.sha != root for c in on_line)


def test_ancestry_on_one_first_parent_line_matches_git(make_repo, tmp_path):
    repo = make_repo("shop")
    root, renamed, head = _history(repo, tmp_path)
    feature = repo.git("rev-parse", "feature")
    forget_shared_answers()
    fast = GitHistory(repo.path)
    fast.first_parent_positions(head)
    forget_shared_answers()
    slow = GitHistory(repo.path)
    for a in (root, renamed, head, feature):
        for d in (root, renamed, head, feature):
            assert fast.is_ancestor(a, d) == slow.is_ancestor(a, d), (a, d)
    assert fast.is_ancestor(feature, head) and not fast.is_ancestor(head, root)


def test_index_deploys_says_why_it_could_not(tmp_path):
    engine = _engine(tmp_path)
    note = index_deploys(engine, tmp_path / "nowhere", ["0" * 40])
    assert note and note.startswith("change index not updated")


def _latent_bug(repo) -> tuple[str, str]:
    """A base commit, then Bob's commit putting a division by zero on app/logic.py line 7."""
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    repo.write("app/logic.py", logic_source({7: "value_7 = 1 / 0"}))
    return base, repo.commit("latent bug", author="Bob <bob@x>")


def _incident_on_line_7() -> Incident:
    return Incident(title="boom", started_at=T0, trace=trace_for(("app/logic.py", 7, "f")))


def test_a_report_reads_the_index_and_ranks_as_without_it(world, tmp_path):
    repo = world.repo
    base, bad = _latent_bug(repo)
    repo.write("docs.md", "docs\n")
    docs = repo.commit("docs only")
    world.deploy(base, None, T0 - timedelta(days=30))
    world.deploy(bad, base, T0 - timedelta(days=12))
    world.deploy(docs, bad, T0 - timedelta(hours=1))
    incident = _incident_on_line_7()
    forget_shared_answers()
    plain = build_report(incident, world.ledger, repo.path, {"change_index": False})
    assert index_deploys(world.ledger.engine, repo.path, [base, bad, docs]) is None
    forget_shared_answers()
    history = GitHistory(repo.path)
    indexed = build_report(incident, world.ledger, history)
    assert isinstance(history.changes, ChangeIndex)
    assert [s.commit.sha for s in indexed.suspects] == [s.commit.sha for s in plain.suspects]
    assert indexed.suspects[0].commit.sha == bad
    assert [s.score for s in indexed.suspects] == pytest.approx(
        [s.score for s in plain.suspects])


def test_deploys_import_fills_the_index(make_repo, tmp_path, capsys):
    from greenlight.cli.main import main

    repo = make_repo("shop")
    _, _, head = _history(repo, tmp_path)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert main(["deploys", "import", "--from-git", "--branch", "main", "--repo",
                 str(repo.path), "--ledger", url]) == 0
    assert "change index not updated" not in capsys.readouterr().out
    engine = create_engine(url)
    history = GitHistory(repo.path)
    assert ChangeIndex(engine).missing(history, head) == (0, head)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ci.change_commits)).scalar() == 7


def test_the_index_on_postgresql(make_repo, tmp_path):
    from tests.conftest import PG_SERVER, fresh_pg_database

    repo = make_repo("shop")
    _, renamed, head = _history(repo, tmp_path)
    with fresh_pg_database("gl_ci") as name:
        engine = create_engine(f"{PG_SERVER}/{name}")
        try:
            assert index_deploys(engine, repo.path, [renamed]) is None
            # The report catches up the rest itself, and answers as the walk does.
            _, indexed, by_walk, by_index = _walk_and_index(repo, engine, head, "app/rules.py",
                                                            list(range(1, 41)))
            assert by_index == by_walk
            assert ChangeIndex(engine).missing(indexed, head) == (0, head)
        finally:
            engine.dispose()


def test_a_read_only_index_walks_git_for_a_sha_it_lacks_and_writes_nothing(world, tmp_path):
    repo = world.repo
    base, bad = _latent_bug(repo)
    world.deploy(base, None, T0 - timedelta(days=30))
    world.deploy(bad, base, T0 - timedelta(days=12))
    assert index_deploys(world.ledger.engine, repo.path, [base]) is None
    incident = _incident_on_line_7()
    forget_shared_answers()
    history = GitHistory(repo.path)
    report = build_report(incident, world.ledger, history, {"change_index": "read"})
    assert report.suspects[0].commit.sha == bad
    assert history.changes is not None and not history.changes.may_write
    assert ChangeIndex(world.ledger.engine).missing(history, bad) == (1, base)
