"""The results over time and the always-valid interval the results page draws: reads at
chosen moments of a real store see only the users and events recorded by then, and the
interval agrees with the always-valid p-value the results decide on."""
from __future__ import annotations

import pytest

from greenlight.experiments import ROLLOUT, Experiment, ExperimentStore
from greenlight.experiments.branch_results import compute_results
from greenlight.experiments.store import BranchMetricAggregate
from greenlight.experiments.timeline import always_valid_interval, reads_over_time

EXPERIMENT = Experiment("Signup", {"enhanced": 0.5}, status=ROLLOUT, rollout_pct=100)


@pytest.mark.parametrize("treated", [500, 540, 560, 580, 600, 650, 800])
def test_interval_excludes_zero_exactly_when_the_always_valid_p_is_below_alpha(treated):
    n = 4000
    aggregates = [BranchMetricAggregate("control", "signup", 500, 500, 500.0, 500.0),
                  BranchMetricAggregate("enhanced", "signup", treated, treated,
                                        float(treated), float(treated))]
    results = compute_results(EXPERIMENT, {"control": n, "enhanced": n}, aggregates)
    metric = results["metrics"][0]
    row = next(r for r in metric["branches"] if r["branch"] == "enhanced")
    low, high = always_valid_interval(results, metric, row, "rate")
    comparison = row["vs_control"]
    assert low < comparison["rate_difference"] < high
    fixed_low, fixed_high = comparison["rate_ci"]
    assert low < fixed_low and fixed_high < high  # valid at any time costs width
    assert (not low <= 0.0 <= high) == (comparison["rate_p_always_valid"] < results["alpha"])


@pytest.mark.parametrize("control,treated", [(1, 12), (0, 9), (40, 4000)])
def test_interval_agrees_with_the_p_value_where_an_arm_sits_at_0_or_100_percent(control,
                                                                                 treated):
    """The results use the pooled rate there; the interval uses the same rule (one place)."""
    n = 4000
    aggregates = [BranchMetricAggregate("control", "signup", control, control, float(control),
                                        float(control)),
                  BranchMetricAggregate("enhanced", "signup", treated, treated,
                                        float(treated), float(treated))]
    results = compute_results(EXPERIMENT, {"control": n, "enhanced": n},
                              [a for a in aggregates if a.converting])
    metric = results["metrics"][0]
    row = next(r for r in metric["branches"] if r["branch"] == "enhanced")
    interval = always_valid_interval(results, metric, row, "rate")
    p = row["vs_control"]["rate_p_always_valid"]
    if interval is None:
        assert p == 1.0
    else:
        low, high = interval
        assert (not low <= 0.0 <= high) == (p < results["alpha"])


def test_interval_is_none_before_anyone_in_the_branch_is_exposed():
    results = compute_results(EXPERIMENT, {"control": 10, "enhanced": 0},
                              [BranchMetricAggregate("control", "signup", 2, 2, 2.0, 2.0)])
    metric = results["metrics"][0]
    row = next(r for r in metric["branches"] if r["branch"] == "enhanced")
    assert always_valid_interval(results, metric, row, "rate") is None


def test_reads_see_only_what_was_recorded_by_their_moment(tmp_path):
    store = ExperimentStore(f"sqlite:///{tmp_path}/e.sqlite")
    store.define(EXPERIMENT, "ada")
    t0 = 1_700_000_000.0
    # 100 users an hour for 4 hours, alternating branches; every third signs up 10 min later
    users = [(f"u{h}-{i}", "control" if i % 2 else "enhanced", t0 + h * 3600 + i)
             for h in range(4) for i in range(100)]
    store.write_exposures([("Signup", u, b, at) for u, b, at in users])
    store.write_events([(u, "signup", 1.0, at + 600) for k, (u, _, at) in enumerate(users)
                        if k % 3 == 0])
    reads = reads_over_time(store, "Signup", reads=4, now=t0 + 4 * 3600)
    assert [r.at for r in reads] == [t0 + 3600 * (h + 1) for h in range(4)]
    exposed = [sum(r.results["exposed"].values()) for r in reads]
    assert exposed == [100, 200, 300, 400]
    signups = [sum(row["converting"] for row in r.results["metrics"][0]["branches"])
               for r in reads]
    assert signups == [34, 67, 100, 134]  # each read's users, their sign-ups by then
    assert reads_over_time(store, "Nobody") == []
    store.dispose()
