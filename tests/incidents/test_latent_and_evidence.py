"""The cases real history is full of: a latent bug weeks old, a docs-only deploy right before the
incident, code moved since the bug, a mechanical commit on the failing line, library frames."""
from __future__ import annotations

from datetime import timedelta

from greenlight.incidents import Incident, build_report, render_markdown
from tests.incidents.conftest import T0, logic_source, trace_for


def _incident(trace: str | None) -> Incident:
    return Incident(title="500s on /checkout", started_at=T0, trace=trace)


def _deploy_ids(report) -> list:
    return list(dict.fromkeys(s.deploy.id for s in report.suspects))


def test_latent_bug_12_days_old_outranks_a_docs_only_deploy_just_before(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    repo.write("docs/guide.md", "# Guide\n")
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=40))
    repo.write("app/logic.py", logic_source({17: "value_17 = totals[0] / len(totals)"}))
    bad = repo.commit("average the totals", author="Lat Ent <lat@x>")
    bad_deploy = world.deploy(bad, base, T0 - timedelta(days=12))
    repo.write("docs/guide.md", "# Guide\n\nMore words.\n")
    docs = repo.commit("docs: explain checkout", author="Doc <doc@x>")
    docs_deploy = world.deploy(docs, bad, T0 - timedelta(minutes=20))

    report = build_report(_incident(trace_for(("app/logic.py", 17, "average"))),
                          world.ledger, repo.path)

    assert _deploy_ids(report)[0] == bad_deploy
    top = report.suspects[0]
    assert top.commit.sha == bad and top.tier == 2
    assert top.latent == "latent: went live 11 days before the incident"
    docs_suspect = next(s for s in report.suspects if s.commit.sha == docs)
    assert docs_suspect.tier == 0 and docs_suspect.deploy.id == docs_deploy
    # The docs deploy earns the most time points and still ranks below: evidence class first.
    time_points = {s.commit.sha: next(e.points for e in s.evidence if e.kind == "time")
                   for s in report.suspects}
    assert time_points[docs] > time_points[bad]
    md = render_markdown(report)
    assert "latent: went live 11 days before the incident" in md
    assert "owns a line of the trace" in md
    for suspect in report.suspects:                  # every score carries its evidence
        assert abs(sum(e.points for e in suspect.evidence) - suspect.score) < 1e-6


def test_code_moved_since_the_bug_is_blamed_on_its_origin_not_the_move(world):
    repo = world.repo
    helpers = "\n".join(f"def helper_{n}(x):\n    return x + {n}\n" for n in range(8))
    repo.write("app/util.py", helpers)
    repo.write("app/pricing.py", "PRICES = {}\n")
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=60))
    buggy = ("def discount(order):\n"
             "    rate = order.coupon.rate if order.coupon else None\n"
             "    return order.total * (1 - rate)  # None when there is no coupon\n")
    repo.write("app/util.py", helpers + "\n" + buggy)
    bad = repo.commit("discounts from coupons", author="Bob <bob@x>")
    bad_deploy = world.deploy(bad, base, T0 - timedelta(days=30))
    # A refactor moves the whole function to another module, reindented into a class.
    repo.write("app/util.py", helpers)
    moved = "class Pricing:\n" + "".join(f"    {line}\n" for line in buggy.splitlines())
    repo.write("app/pricing.py", "PRICES = {}\n\n\n" + moved)
    mover = repo.commit("move pricing code into app/pricing.py", author="Mo Ver <mo@x>")
    move_deploy = world.deploy(mover, bad, T0 - timedelta(hours=3))

    line = 7       # "        return order.total * (1 - rate)" in app/pricing.py
    assert "return order.total" in repo.path.joinpath("app/pricing.py").read_text() \
        .splitlines()[line - 1]
    report = build_report(_incident(trace_for(("app/pricing.py", line, "discount"))),
                          world.ledger, repo.path)

    assert _deploy_ids(report)[0] == bad_deploy
    blamed = next(e for e in report.suspects[0].evidence if e.kind == "blamed_line")
    assert blamed.blame.orig_path == "app/util.py"
    assert "(written in app/util.py:" in blamed.detail
    mover_suspect = next(s for s in report.suspects if s.commit.sha == mover)
    assert mover_suspect.tier == 1 and mover_suspect.deploy.id == move_deploy


def test_mechanical_commits_are_seen_through(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=20))
    repo.write("app/logic.py", logic_source({9: "value_9 = {'a': 1}['b']"}))
    bad = repo.commit("lookup table", author="Bob <bob@x>")
    bad_deploy = world.deploy(bad, base, T0 - timedelta(days=10))
    repo.write("app/logic.py", logic_source({9: 'value_9 = {"a": 1}["b"]'}))
    quotes = repo.commit("style: double quotes everywhere", author="Fmt <fmt@x>")
    world.deploy(quotes, bad, T0 - timedelta(days=2))
    trace = trace_for(("app/logic.py", 9, "lookup"))

    plain = build_report(_incident(trace), world.ledger, repo.path)
    assert plain.suspects[0].commit.sha == quotes          # blame credits the reformat ...
    seen_through = build_report(_incident(trace), world.ledger, repo.path,
                                {"mechanical_commits": [quotes]})
    assert seen_through.suspects[0].commit.sha == bad      # ... unless told it is mechanical
    assert _deploy_ids(seen_through)[0] == bad_deploy

    # .git-blame-ignore-revs in the tree does the same without any setting.
    repo.write(".git-blame-ignore-revs", f"# formatting\n{quotes}\n")
    listed = repo.commit("ignore the quote change in blame")
    world.deploy(listed, quotes, T0 - timedelta(days=1))
    from_file = build_report(_incident(trace), world.ledger, repo.path)
    assert from_file.suspects[0].commit.sha == bad


def test_the_innermost_frame_counts_most_and_library_frames_are_never_blamed(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=30))
    repo.write("app/logic.py", logic_source({5: "value_5 = caller()"}))
    outer = repo.commit("outer change", author="Out <out@x>")
    world.deploy(outer, base, T0 - timedelta(days=3))
    repo.write("app/logic.py", logic_source({5: "value_5 = caller()", 25: "value_25 = 1 / 0"}))
    inner = repo.commit("inner change", author="In <in@x>")
    world.deploy(inner, outer, T0 - timedelta(days=2))
    trace = (trace_for(("app/logic.py", 5, "caller"), ("app/logic.py", 25, "divide"))
             .replace("ZeroDivisionError", '  File "/srv/shop/.venv/lib/python3.12/'
                      'site-packages/app/logic.py", line 5, in caller\n    x\nZeroDivisionError'))
    report = build_report(_incident(trace), world.ledger, repo.path)
    assert [s.commit.sha for s in report.suspects[:2]] == [inner, outer]
    points = [next(e.points for e in s.evidence if e.kind == "blamed_line")
              for s in report.suspects[:2]]
    assert points[0] > points[1]
    library = [f for f in report.unmapped_frames if f.library]
    assert len(library) == 1 and "site-packages" in library[0].path
    assert report.frames[-1].innermost and report.frames[-1].line == 25
    assert "(library, not blamed)" in render_markdown(report)


def test_a_blamed_commit_before_the_horizon_is_named_in_a_note_not_ranked(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source({3: "value_3 = None + 1"}))
    ancient = repo.commit("ancient")
    world.deploy(ancient, None, T0 - timedelta(days=500))
    repo.write("README.md", "hello\n")
    recent = repo.commit("readme")
    world.deploy(recent, ancient, T0 - timedelta(days=1))
    report = build_report(_incident(trace_for(("app/logic.py", 3, "f"))), world.ledger,
                          repo.path, {"horizon": "90d"})
    assert ancient not in [s.commit.sha for s in report.suspects]
    assert any(note.startswith(f"app/logic.py:3: already in {ancient[:12]}, the code live "
                               f"before the first deploy the report reads")
               for note in report.notes)


def test_a_change_that_only_deletes_lines_is_not_called_a_rename(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=5))
    lines = logic_source().splitlines()
    repo.write("app/logic.py", "\n".join(lines[:10] + lines[14:]) + "\n")
    cut = repo.commit("drop four values")
    world.deploy(cut, base, T0 - timedelta(minutes=30))
    report = build_report(_incident(trace_for(("app/logic.py", 12, "f"))), world.ledger,
                          repo.path)
    suspect = next(s for s in report.suspects if s.commit.sha == cut)
    changed = next(e for e in suspect.evidence if e.kind == "changed_file")
    assert "lines deleted after line 10" in changed.detail
    assert "renamed" not in changed.detail


def test_reports_cap_frames_and_say_so(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source(lines=80))
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=2))
    frames = [("app/logic.py", n, f"f{n}") for n in range(1, 61)]
    report = build_report(_incident(trace_for(*frames)), world.ledger, repo.path)
    assert len(report.frames) == 40 and report.frames[-1].line == 60
    assert any("20 outer stack frame(s) are not shown" in n for n in report.notes)
    assert len(report.suspects[0].evidence) <= 8


def test_a_commit_owning_many_outer_frames_weighs_one_and_a_half_lines_at_most(world):
    repo = world.repo
    for n in range(12):
        repo.write(f"app/mod{n}.py", logic_source())
    base = repo.commit("initial import", author="Imp Ort <imp@x>")
    world.deploy(base, None, T0 - timedelta(days=20))
    repo.write("app/mod11.py", logic_source({30: "value_30 = {}['missing']"}))
    bad = repo.commit("read the missing key", author="Bob <bob@x>")
    world.deploy(bad, base, T0 - timedelta(days=2))
    frames = [(f"app/mod{n}.py", 5 + n, f"f{n}") for n in range(11)] + [("app/mod11.py", 30, "g")]
    report = build_report(_incident(trace_for(*frames)), world.ledger, repo.path)
    imported = next(s for s in report.suspects if s.commit.sha == base)
    blamed = [e for e in imported.evidence if e.kind == "blamed_line"]
    assert len(blamed) == 7 and imported.hidden_evidence == 5   # 11 lines, a file, time: 8 shown
    assert all("its lines weigh 1.5 at most" in e.detail for e in blamed)
    assert sum(e.points for e in blamed) < 60 * 1.5
    changed = [e for e in imported.evidence if e.kind == "changed_file"]
    assert len(changed) == 1 and changed[0].detail.startswith("changed 12 file(s) of the trace")
    assert changed[0].points == 12
    assert "and 7 more" in changed[0].detail


def test_the_failing_lines_author_outranks_a_refactor_of_two_callers_of_the_same_age(world):
    """pallets/flask's miss: a refactor a day younger owned the two frames out of the failing
    line (0.7 + 0.49 of the weight) and outranked the commit that wrote the failing line (1.0).
    A commit's frames after its innermost one now count half."""
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=60))
    repo.write("app/logic.py", logic_source({30: "value_30 = totals[0] / count"}))
    wrote = repo.commit("average over the count", author="Wri Ter <w@x>")
    wrote_deploy = world.deploy(wrote, base, T0 - timedelta(days=19))
    repo.write("app/logic.py", logic_source({10: "value_10 = middle(request.args)",
                                             20: "value_20 = inner(args, strict=True)",
                                             30: "value_30 = totals[0] / count"}))
    refactor = repo.commit("refactor the callers", author="Re Factor <r@x>")
    world.deploy(refactor, wrote, T0 - timedelta(days=18))
    trace = trace_for(("app/logic.py", 10, "outer"), ("app/logic.py", 20, "middle"),
                      ("app/logic.py", 30, "inner"))

    report = build_report(_incident(trace), world.ledger, repo.path)

    assert _deploy_ids(report)[0] == wrote_deploy
    first, second = report.suspects[:2]
    assert first.commit.sha == wrote and second.commit.sha == refactor
    assert first.tier == second.tier == 2
    rows = [e for e in second.evidence if e.kind == "blamed_line"]
    assert [e.frame.depth for e in rows] == [1, 2]
    assert "another frame of the same commit" in rows[1].detail
    assert "another frame" not in rows[0].detail
    # The same refactor, had it owned the callers alone with no rival line, still ranks:
    assert second.score > 40
