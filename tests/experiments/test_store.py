"""The store on SQLite and on the real PostgreSQL: states with who/when, first exposure wins,
results aggregated in SQL agree with a direct computation."""
from __future__ import annotations

import random
import statistics

import pytest

from greenlight.errors import UsageError
from greenlight.experiments import (CONTROL, Experiment, ExperimentStore, close, define,
                                    history, list_experiments, results, set_qa, set_rollout)


@pytest.fixture
def store(db_url):
    s = ExperimentStore(db_url)
    yield s
    s.dispose()


def test_state_changes_record_who_and_when(store):
    define(Experiment("DemoSignup", {"enhanced": 0.5}), "ada", store=store)
    rolled = set_rollout("DemoSignup", 20, "bob", store=store)
    assert rolled.status == "rollout" and rolled.rollout_pct == 20
    assert rolled.updated_by == "bob" and rolled.updated_at > 0 and rolled.version == 2
    qa = set_qa("DemoSignup", "carol", users=["alice"], store=store)
    assert qa.status == "qa" and qa.qa_users == ("alice",) and qa.qa_groups == ("qa", "admin")
    closed = close("DemoSignup", "enhanced", "dan", store=store)
    assert closed.status == "closed" and closed.closed_branch == "enhanced"
    changes = history("DemoSignup", store=store)
    assert [(c.by, c.action) for c in changes] == [("ada", "define"), ("bob", "rollout"),
                                                   ("carol", "qa"), ("dan", "close")]
    assert changes[1].detail["rollout_pct"] == 20
    assert all(a.at <= b.at for a, b in zip(changes, changes[1:]))
    with pytest.raises(UsageError, match="closing is final"):
        set_rollout("DemoSignup", 50, "eve", store=store)
    with pytest.raises(UsageError, match="no branch"):
        close("DemoSignup", "other", "eve", store=store)
    with pytest.raises(UsageError, match="no experiment named"):
        set_rollout("Missing", 5, "eve", store=store)
    assert [e.name for e in list_experiments(store=store)] == ["DemoSignup"]


def test_define_keeps_running_state_and_refuses_to_move_users(store):
    define(Experiment("Keep", {"enhanced": 0.5}), "app", store=store)
    set_rollout("Keep", 40, "admin", store=store)
    again = define(Experiment("Keep", {"enhanced": 0.5}), "app", store=store)
    assert again.rollout_pct == 40  # the code's definition does not undo the admin's change
    store.write_exposures([("Keep", "u1", CONTROL, 1.0)])
    with pytest.raises(UsageError, match="move users"):
        define(Experiment("Keep", {"enhanced": 0.2}), "app", store=store, replace=True)


def test_first_exposure_wins(store):
    define(Experiment("Dup", {"enhanced": 0.5}), "app", store=store)
    store.write_exposures([("Dup", "u1", "enhanced", 1.0), ("Dup", "u2", CONTROL, 1.0)])
    store.write_exposures([("Dup", "u1", CONTROL, 2.0), ("Dup", "u1", CONTROL, 3.0)])
    assert store.exposure_counts("Dup") == {"enhanced": 1, CONTROL: 1}


def test_sql_aggregates_match_direct_computation(store):
    rng = random.Random(5)
    define(Experiment("Agg", {"enhanced": 0.5}, status="rollout", rollout_pct=100), "app",
           store=store)
    users = {f"u{i}": (CONTROL if i % 2 else "enhanced") for i in range(400)}
    store.write_exposures([("Agg", u, b, 100.0) for u, b in users.items()])
    events = [("outsider", "purchase", 99.0, 150.0),  # never exposed: ignored
              ("u1", "purchase", 1000.0, 50.0)]       # before exposure: ignored
    for user, branch in users.items():
        for _ in range(rng.randrange(3 if branch == CONTROL else 4)):
            events.append((user, "purchase", round(rng.uniform(1, 30), 2), 200.0))
    store.write_events(events)

    data = results("Agg", store=store, metrics=["purchase"])
    assert data["exposed"] == {CONTROL: 200, "enhanced": 200}
    metric = data["metrics"][0]
    for row in metric["branches"]:
        members = [u for u, b in users.items() if b == row["branch"]]
        totals = [sum(v for uu, n, v, t in events if uu == u and t >= 100.0) for u in members]
        assert row["converting"] == sum(1 for t in totals if t > 0)
        assert row["mean_per_user"] == pytest.approx(statistics.fmean(totals))
        assert row["variance_per_user"] == pytest.approx(statistics.variance(totals))
    enhanced = metric["branches"][1]["vs_control"]
    assert enhanced["mean_difference"] > 0 and enhanced["mean_p_value"] < 0.05
    assert data["srm"]["mismatch"] is False
    later = results("Agg", store=store, since=300.0)
    assert later["exposed"] == {CONTROL: 0, "enhanced": 0}


def test_running_totals_agree_with_raw_join_whatever_the_write_order(store):
    """Hosts write exposures and events in any order: an event written before its user's
    exposure (another host flushed first) still counts once it happened after the exposure."""
    define(Experiment("Order", {"b": 0.5}, status="rollout", rollout_pct=100), "app",
           store=store)
    define(Experiment("Other", {"b": 0.5}, status="rollout", rollout_pct=100), "app",
           store=store)
    store.write_events([("early", "purchase", 5.0, 20.0),   # after exposure at 10: counts
                        ("early", "purchase", 7.0, 5.0),    # before exposure: never counts
                        ("late", "login", 1.0, 30.0)])
    assert store.write_exposures([("Order", "early", "b", 10.0),
                                  ("Order", "late", CONTROL, 10.0),
                                  ("Other", "early", CONTROL, 25.0)]) == 3
    assert store.write_exposures([("Order", "early", CONTROL, 1.0)]) == 0  # first one wins
    store.write_events([("early", "purchase", 3.0, 40.0), ("late", "login", 1.0, 41.0),
                        ("nobody", "login", 1.0, 42.0)])

    def table(since):
        return sorted((a.branch, a.metric, a.converting, a.events, a.total, a.total_squares)
                      for a in store.metric_aggregates("Order", since=since))

    expected = [("b", "purchase", 1, 2, 8.0, 64.0), (CONTROL, "login", 1, 2, 2.0, 4.0)]
    assert table(None) == expected
    assert table(0.0) == expected  # the raw join (the --since path) agrees
    other = store.metric_aggregates("Other")
    assert [(a.branch, a.metric, a.events, a.total) for a in other] == [
        (CONTROL, "purchase", 1, 3.0)]
    store.rebuild_totals()
    assert table(None) == expected
    assert [(a.branch, a.metric, a.events) for a in store.metric_aggregates("Other")] == [
        (CONTROL, "purchase", 1)]
