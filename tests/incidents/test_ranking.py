"""End to end on real repositories and a real ledger: who is suspected, in which order, and why."""
from __future__ import annotations

from datetime import timedelta

from greenlight.incidents import Incident, build_report
from greenlight.git.history import GitHistory
from tests.incidents.conftest import T0, logic_source, trace_for


def _incident(trace: str | None) -> Incident:
    return Incident(title="LoginErrors: 5xx on /login", started_at=T0, trace=trace,
                    service="shop")


def _shas(report) -> list[str]:
    return [s.commit.sha for s in report.suspects]


def _seed(world):
    """Live base, then a deploy 30 min before the incident with three commits, one after."""
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    repo.write("app/server.py", logic_source(lines=10))
    base = repo.commit("base", author="Old Timer <old@x>")
    world.deploy(base, None, T0 - timedelta(hours=5))
    repo.write("app/server.py", logic_source({3: "value_3 = 'refactored'"}, lines=10))
    refactor = repo.commit("refactor server", author="Rita <rita@x>")
    repo.write("app/logic.py", logic_source({20: "value_20 = 1 / 0"}))
    bad = repo.commit("speed up totals", author="Bob Bad <bob@x>")
    repo.write("app/logic.py", logic_source({2: "value_2 = 'doc'", 20: "value_20 = 1 / 0"}))
    same_file = repo.commit("tidy constants", author="Sam <sam@x>")
    world.deploy(same_file, base, T0 - timedelta(minutes=30))
    repo.write("app/logic.py", logic_source({2: "value_2 = 'doc'", 20: "value_20 = 20"}))
    fix = repo.commit("fix totals", author="Fixer <fix@x>")
    world.deploy(fix, same_file, T0 + timedelta(minutes=20))
    return dict(base=base, refactor=refactor, bad=bad, same_file=same_file, fix=fix)


def test_bad_commit_ranks_first_and_same_file_commit_below(world):
    shas = _seed(world)
    trace = trace_for(("app/server.py", 5, "handle"), ("app/logic.py", 20, "total"))
    report = build_report(_incident(trace), world.ledger, world.repo.path)
    order = _shas(report)
    assert order[0] == shas["bad"]
    assert order.index(shas["same_file"]) > order.index(shas["bad"])
    top = report.suspects[0]
    kinds = [e.kind for e in top.evidence]
    assert "blamed_line" in kinds and "changed_file" in kinds and "time" in kinds
    blamed = next(e for e in top.evidence if e.kind == "blamed_line")
    assert blamed.blame.line == 20 and blamed.blame.commit == shas["bad"]
    assert blamed.frame.innermost
    same = next(s for s in report.suspects if s.commit.sha == shas["same_file"])
    assert "changed_file" in [e.kind for e in same.evidence]
    assert "blamed_line" not in [e.kind for e in same.evidence]
    assert report.live == {"web1": shas["same_file"], "web2": shas["same_file"]}


def test_commits_deployed_after_the_start_are_never_suspects(world):
    shas = _seed(world)
    trace = trace_for(("app/logic.py", 20, "total"))
    report = build_report(_incident(trace), world.ledger, world.repo.path)
    assert shas["fix"] not in _shas(report)
    assert [c.sha for c in report.after] == [shas["fix"]]
    positions = {e.deploy.sha: e.position for e in report.timeline}
    assert positions[shas["fix"]] == "after" and positions[shas["same_file"]] == "before"


def test_without_trace_time_orders_and_the_report_says_so(world):
    shas = _seed(world)
    report = build_report(_incident(None), world.ledger, world.repo.path)
    assert set(_shas(report)) == {shas["refactor"], shas["bad"], shas["same_file"],
                                  shas["base"]}
    assert _shas(report)[-1] == shas["base"]          # deployed 5 h earlier: least suspect
    assert any("No stack trace" in n for n in report.notes)


def test_no_deploy_in_window_and_no_trace_says_so_plainly(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=2))
    report = build_report(_incident(None), world.ledger, repo.path, {"window": "6h"})
    assert report.suspects == []
    assert report.notes[0].startswith("No deploy in the window before the incident")
    assert report.live == {"web1": base, "web2": base}


def test_no_deploy_in_window_but_the_traced_line_names_its_deploy(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=2))
    report = build_report(_incident(trace_for(("app/logic.py", 3, "f"))), world.ledger,
                          repo.path, {"window": "6h"})
    assert _shas(report) == [base]
    assert report.suspects[0].latent.startswith("latent: went live")
    assert not any(n.startswith("No deploy in the window") for n in report.notes)


def test_rename_of_the_traced_file_is_followed_by_blame(world):
    repo = world.repo
    repo.write("app/old_name.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(hours=4))
    repo.write("app/old_name.py", logic_source({12: "value_12 = None.attr"}))
    bad = repo.commit("break line 12", author="Bob <bob@x>")
    repo.git("mv", "app/old_name.py", "app/new_name.py")
    renamed = repo.commit("rename module", author="Rena <rena@x>")
    world.deploy(renamed, base, T0 - timedelta(minutes=15))
    report = build_report(_incident(trace_for(("app/new_name.py", 12, "f"))), world.ledger,
                          repo.path)
    assert _shas(report)[0] == bad
    blamed = next(e for e in report.suspects[0].evidence if e.kind == "blamed_line")
    assert blamed.blame.orig_path == "app/old_name.py"
    assert blamed.blame.path == "app/new_name.py"
    # the change made before the rename still counts as touching the traced file
    assert "changed_file" in [e.kind for e in report.suspects[0].evidence]


def test_merged_branch_commit_is_blamed_not_the_merge(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    repo.write("app/other.py", "x = 1\n")
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(hours=3))
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app/logic.py", logic_source({7: "value_7 = int('x')"}))
    feature = repo.commit("feature: parse input", author="Fay <fay@x>")
    repo.git("checkout", "-q", "main")
    repo.write("app/other.py", "x = 2\n")
    mainline = repo.commit("main: other", author="Max <max@x>")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    merge = repo.head()
    world.deploy(merge, base, T0 - timedelta(minutes=10))
    report = build_report(_incident(trace_for(("app/logic.py", 7, "parse"))), world.ledger,
                          repo.path)
    order = _shas(report)
    assert order[0] == feature
    assert merge in order and mainline in order
    merge_suspect = next(s for s in report.suspects if s.commit.sha == merge)
    assert merge_suspect.commit.is_merge and merge_suspect.score < report.suspects[0].score


def test_commit_rolled_back_before_the_start_is_demoted(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(hours=3))
    repo.write("app/logic.py", logic_source({5: "value_5 = 'bad'"}))
    reverted = repo.commit("bad idea", author="Ann <ann@x>")
    world.deploy(reverted, base, T0 - timedelta(hours=2), outcome="rolled_back")
    world.deploy(base, reverted, T0 - timedelta(hours=1, minutes=50), kind="rollback")
    report = build_report(_incident(None), world.ledger, repo.path)
    suspect = next(s for s in report.suspects if s.commit.sha == reverted)
    kinds = [e.kind for e in suspect.evidence]
    assert "not_live" in kinds and "rolled_back" in kinds
    assert any(e.note and "rollback" in e.note for e in report.timeline)


def test_pipeline_signals_become_evidence(world):
    shas = _seed(world)
    signals = {shas["refactor"]: {"coverage": 0.25, "schema_findings": ["ALTER TABLE users"]}}
    report = build_report(_incident(None), world.ledger, world.repo.path,
                          {"incidents": {"signals": signals}})
    refactor = next(s for s in report.suspects if s.commit.sha == shas["refactor"])
    kinds = {e.kind: e for e in refactor.evidence}
    assert kinds["coverage"].points > 0 and "25%" in kinds["coverage"].detail
    assert "ALTER TABLE users" in kinds["schema"].detail
    assert _shas(report)[0] == shas["refactor"]


def test_blame_is_cached_and_skips_lines_past_the_end(world):
    repo = world.repo
    repo.write("a.py", logic_source(lines=5))
    sha = repo.commit("five lines")
    history = GitHistory(repo.path)
    first = history.blame_lines(sha, "a.py", [2, 99])
    assert list(first) == [2] and first[2].commit == sha
    assert history.blame_lines(sha, "a.py", [2]) == {2: first[2]}


def test_a_line_changed_before_the_window_names_its_deploy_as_latent(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=1))
    repo.write("app/logic.py", logic_source({30: "value_30 = []"}))
    old = repo.commit("older change, deployed yesterday")
    world.deploy(old, base, T0 - timedelta(hours=20))
    repo.write("app/logic.py", logic_source({30: "value_30 = []", 8: "value_8 = {}[0]"}))
    bad = repo.commit("recent change")
    world.deploy(bad, old, T0 - timedelta(minutes=40))
    trace = trace_for(("app/logic.py", 30, "outer"), ("app/logic.py", 8, "inner"))
    report = build_report(_incident(trace), world.ledger, repo.path, {"window": "2h"})
    assert _shas(report) == [bad, old]   # the innermost line first, then one frame out
    blamed = [e.blame.line for e in report.suspects[0].evidence if e.kind == "blamed_line"]
    assert blamed == [8]
    older = report.suspects[1]
    assert [e.blame.line for e in older.evidence if e.kind == "blamed_line"] == [30]
    assert older.latent == "latent: went live 20.0 h before the incident"
    assert report.suspects[0].latent is None
    history = GitHistory(repo.path)
    assert history.blame_lines(bad, "app/logic.py", [30])[30].commit == old
