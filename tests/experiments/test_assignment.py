"""Assignment: proportional to the weights, independent between experiments, stable across
processes, monotone under rollout increases, and each state as the seed's admin table says."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from greenlight.experiments import (CLOSED, CONTROL, QA, ROLLOUT, CompiledExperiment,
                                    Experiment, explain, parse_branches, user_hash)
from greenlight.experiments.assignment import experiment_seed
from greenlight.errors import UsageError

IDS = [f"user-{i}" for i in range(100_000)]


def _counts(experiment, ids=IDS):
    compiled = CompiledExperiment(experiment)
    return Counter(compiled.assign(u)[0] for u in ids)


@pytest.mark.parametrize("branches", [{"enhanced": 0.5}, {"a": 0.2, "b": 0.3},
                                      {"small": 0.05}])
def test_assignment_matches_weights(branches):
    from scipy.stats import chisquare  # here: every xdist worker collects this module

    e = Experiment("Weights", branches, status=ROLLOUT, rollout_pct=100)
    counts = _counts(e)
    names = e.all_branches()
    expected = [e.weights()[n] * len(IDS) for n in names]
    p = chisquare([counts[n] for n in names], expected).pvalue
    assert p > 0.001, (counts, expected)


def test_rollout_share_and_split_inside_it():
    from scipy.stats import chisquare

    e = Experiment("Share", {"enhanced": 0.5}, status=ROLLOUT, rollout_pct=30)
    compiled = CompiledExperiment(e)
    assigned = Counter(compiled.assign(u)[0] for u in IDS if compiled.assign(u)[1])
    total = sum(assigned.values())
    assert chisquare([total, len(IDS) - total], [30_000, 70_000]).pvalue > 0.001
    assert chisquare([assigned[CONTROL], assigned["enhanced"]]).pvalue > 0.001


def test_experiments_are_independent():
    from scipy.stats import chi2_contingency

    a = CompiledExperiment(Experiment("First", {"x": 0.5}, status=ROLLOUT, rollout_pct=100))
    b = CompiledExperiment(Experiment("Second", {"y": 0.5}, status=ROLLOUT, rollout_pct=100))
    pairs = Counter((a.assign(u)[0], b.assign(u)[0]) for u in IDS)
    table = [[pairs[(ra, rb)] for rb in (CONTROL, "y")] for ra in (CONTROL, "x")]
    assert chi2_contingency(table).pvalue > 0.001, table
    # and not merely the same split relabelled
    assert 20_000 < pairs[(CONTROL, CONTROL)] < 30_000


def test_raising_rollout_keeps_every_assigned_user():
    low = CompiledExperiment(Experiment("Grow", {"enhanced": 0.5}, status=ROLLOUT,
                                        rollout_pct=10))
    high = CompiledExperiment(Experiment("Grow", {"enhanced": 0.5}, status=ROLLOUT,
                                         rollout_pct=20))
    before = {u: low.assign(u) for u in IDS}
    after = {u: high.assign(u) for u in IDS}
    kept = [u for u, (branch, counted) in before.items() if counted]
    assert 9_000 < len(kept) < 11_000
    assert all(after[u] == before[u] for u in kept)
    assert 19_000 < sum(1 for b, c in after.values() if c) < 21_000


def test_stable_across_processes_and_restarts():
    # Pinned values: a change of hash would silently move every running experiment's users.
    assert user_hash("user-1", experiment_seed("DemoSignup")) == user_hash(
        "user-1", experiment_seed("DemoSignup"))
    e = Experiment("Stable", {"enhanced": 0.5}, status=ROLLOUT, rollout_pct=50)
    here = [CompiledExperiment(e).assign(u)[0] for u in IDS[:2000]]
    code = ("import sys, json\n"
            "from greenlight.experiments import CompiledExperiment, Experiment\n"
            "e = Experiment('Stable', {'enhanced': 0.5}, status='rollout', rollout_pct=50)\n"
            "c = CompiledExperiment(e)\n"
            "print(json.dumps([c.assign(f'user-{i}')[0] for i in range(2000)]))\n")
    for seed in ("0", "12345"):  # different PYTHONHASHSEED: Python's hash() must not matter
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin"})
        assert __import__("json").loads(out.stdout) == here


def test_pinned_hash_values():
    assert user_hash("alice", experiment_seed("DemoSignup")) == PINNED_ALICE
    assert user_hash("", 0) == 0


PINNED_ALICE = 2156954872  # MurmurHash3 x86_32 of 'alice'; must never change


def test_qa_state_assigns_only_listed_users_and_groups():
    e = Experiment("Qa", {"enhanced": 0.5}, status=QA, qa_users=("alice", "bob"),
                   qa_groups=("admin",))
    compiled = CompiledExperiment(e)
    assert compiled.assign("alice")[1] is True
    assert compiled.assign("carol", groups=["admin"])[1] is True
    assert compiled.assign("dave") == (CONTROL, False)
    assert compiled.assign("erin", groups=["support"]) == (CONTROL, False)
    qa_users = [f"qa-{i}" for i in range(400)]
    listed = CompiledExperiment(Experiment("Qa", {"enhanced": 0.5}, qa_users=tuple(qa_users)))
    branches = Counter(listed.assign(u)[0] for u in qa_users)
    assert branches["enhanced"] > 150 and branches[CONTROL] > 150  # at random, both branches
    assert "QA and admins only" in explain(e) and "everyone else sees control" in explain(e)


def test_closed_state_gives_everybody_the_branch_uncounted():
    e = Experiment("Done", {"enhanced": 0.5}, status=CLOSED, closed_branch="enhanced")
    compiled = CompiledExperiment(e)
    assert {compiled.assign(u) for u in IDS[:1000]} == {("enhanced", False)}
    assert explain(e) == "Closed on enhanced: everybody sees enhanced; nobody is assigned."
    back = Experiment("Done", {"enhanced": 0.5}, status=CLOSED, closed_branch=CONTROL)
    assert CompiledExperiment(back).assign("x") == (CONTROL, False)


def test_rollout_explanations():
    zero = Experiment("R", {"enhanced": 0.5}, status=ROLLOUT, rollout_pct=0)
    assert {CompiledExperiment(zero).assign(u) for u in IDS[:1000]} == {(CONTROL, False)}
    assert explain(zero).startswith("Rolled out to 0%")
    twenty = zero.with_state(rollout_pct=20)
    assert explain(twenty).startswith("Rolled out to 20%: 20% of users are assigned")


def test_collection_status_is_the_engines_answer():
    """The admin page and the CLI's JSON show this one answer; the page computes nothing."""
    zero = Experiment("R", {"enhanced": 0.5}, status=ROLLOUT, rollout_pct=0)
    assert zero.collection_status() == "running, nobody assigned yet"
    assert zero.with_state(rollout_pct=5).collection_status() == "running"
    assert Experiment("Q", {"enhanced": 0.5}).collection_status() == "in QA (not counted)"
    closed = zero.with_state(status=CLOSED, closed_branch="enhanced")
    assert closed.collection_status() == "closed: enhanced launched"


def test_definitions_are_validated():
    with pytest.raises(UsageError, match="sum to 1.2"):
        Experiment("Bad", {"a": 0.6, "b": 0.6})
    with pytest.raises(UsageError, match="implicit"):
        Experiment("Bad", {"control": 0.5})
    with pytest.raises(UsageError, match="must be 1-100"):
        Experiment("<script>", {"a": 0.5})
    with pytest.raises(UsageError, match="cannot close"):
        Experiment("Bad", {"a": 0.5}, status=CLOSED, closed_branch="b")
    with pytest.raises(UsageError, match="0-100"):
        Experiment("Bad", {"a": 0.5}, status=ROLLOUT, rollout_pct=120)
    assert parse_branches("enhanced=0.5") == {"enhanced": 0.5}
    assert parse_branches("a,b") == {"a": 1 / 3, "b": 1 / 3}
    with pytest.raises(UsageError, match="not a number"):
        parse_branches("a=half")


@pytest.mark.parametrize("state", [dict(status=ROLLOUT, rollout_pct=35),
                                   dict(status=QA, qa_users=("user-7", "user-9")),
                                   dict(status=CLOSED, closed_branch="b")])
def test_inlined_hot_path_agrees_with_assign(state):
    e = Experiment("Hot", {"a": 0.3, "b": 0.3}, **state)
    reference = CompiledExperiment(e)
    queue: list = []
    hot = CompiledExperiment(e).recording_into(queue)
    for u in IDS[:20_000]:
        assert hot.pick(u) == reference.assign(u)[0]
    counted = [u for u in IDS[:20_000] if reference.assign(u)[1]]
    assert [row[1] for row in queue] == counted  # one exposure per assigned user, in order
    assert {row[2] for row in queue} <= {"a", "b", CONTROL} and all(
        row[0] == "Hot" for row in queue)
    hot.seen = set(counted)  # what the writer does once the exposures are stored
    for u in counted[:100]:
        hot.pick(u)
    assert len(queue) == len(counted)  # already stored: not queued again
