"""Results from aggregates (pure): the seed's figures, SRM and read-early warnings, renderers."""
from __future__ import annotations

import json

from greenlight.experiments import CONTROL, Experiment, render_results
from greenlight.experiments.branch_results import compute_results
from greenlight.experiments.store import BranchMetricAggregate

SEED = Experiment("Seed", {"treatment": 0.5}, status="rollout", rollout_pct=100)


def _seed_results(**kwargs):
    aggregates = [BranchMetricAggregate(CONTROL, "signup", 64_630, 64_630, 64_630, 64_630),
                  BranchMetricAggregate("treatment", "signup", 66_903, 66_903, 66_903, 66_903)]
    return compute_results(SEED, {CONTROL: 148_266, "treatment": 150_702}, aggregates,
                           **kwargs)


def test_seed_figures_in_results():
    data = _seed_results()
    control, treatment = data["metrics"][0]["branches"]
    assert f"{control['rate']:.5f}" == "0.43591" and f"{treatment['rate']:.5f}" == "0.44394"
    vs = treatment["vs_control"]
    assert f"{vs['rate_p_value']:.6f}" == "0.000010"
    assert vs["rate_significant"] is True
    assert vs["rate_ci"][0] > 0
    assert vs["seed_rule"]["significant"] is True and vs["seed_rule"]["counted"] == "events"
    assert data["srm"]["mismatch"] is True  # 148,266 vs 150,702 is not a 50/50 split
    assert any("Sample ratio mismatch" in w for w in data["warnings"])


def test_fair_split_has_no_srm_and_read_early_warning_until_planned_size():
    early = compute_results(
        Experiment("Early", {"b": 0.5}, planned_users=10_000), {CONTROL: 1_000, "b": 1_010},
        [BranchMetricAggregate(CONTROL, "login", 100, 100, 100, 100),
         BranchMetricAggregate("b", "login", 130, 130, 130, 130)])
    assert not early["srm"]["mismatch"]
    assert early["metrics"][0]["read_early"] is True
    assert any("read early, 1,000 of 10,000" in w for w in early["warnings"])
    done = compute_results(Experiment("Done", {"b": 0.5}, planned_users=500),
                           {CONTROL: 1_000, "b": 1_010}, [])
    assert done["warnings"] == []


def test_renderers_escape_and_agree():
    aggregates = [BranchMetricAggregate(CONTROL, "<b>x</b>", 10, 12, 12.0, 16.0),
                  BranchMetricAggregate("treatment", "<b>x</b>", 20, 25, 25.0, 35.0)]
    data = compute_results(SEED, {CONTROL: 100, "treatment": 100}, aggregates)
    page = render_results(data, "html")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert json.loads(render_results(data, "json"))["metrics"][0]["metric"] == "<b>x</b>"
    text = render_results(data, "text")
    assert "treatment" in text and "Rolled out to 100%" in text
    md = render_results(data, "md")
    assert md.startswith("## Experiment Seed") and "| <b>x</b> | treatment |" in md


def test_empty_experiment_renders_without_numbers():
    data = compute_results(SEED, {}, [])
    assert data["metrics"] == [] and data["exposed"] == {CONTROL: 0, "treatment": 0}
    assert "no metric events" in render_results(data, "text")
    assert json.loads(render_results(data, "json"))["srm"]["mismatch"] is False


def test_always_valid_p_value_is_more_conservative_than_fixed_sample():
    vs = _seed_results()["metrics"][0]["branches"][1]["vs_control"]
    assert vs["rate_p_value"] < vs["rate_p_always_valid"] < 0.05
    none = compute_results(SEED, {CONTROL: 1000, "treatment": 1000},
                           [BranchMetricAggregate(CONTROL, "m", 100, 100, 100, 100),
                            BranchMetricAggregate("treatment", "m", 101, 101, 101, 101)])
    assert none["metrics"][0]["branches"][1]["vs_control"]["rate_p_always_valid"] > 0.5


def test_each_read_continues_from_the_last_so_the_always_valid_p_never_rises(tmp_path):
    """Two reads through the store: a strong early effect, then much more data without one.
    The fixed-sample p rises with the diluted data; the always-valid p shown stays the running
    minimum, because the second read starts from the first one kept in the store."""
    from greenlight.experiments import admin
    from greenlight.experiments.store import ExperimentStore

    store = ExperimentStore(f"sqlite:///{tmp_path / 'x.sqlite'}")
    store.define(Experiment("Banner", {"big": 1}, planned_users=100_000), "test")
    branch = ["control", "big"]
    store.write_exposures([("Banner", f"a{i}", branch[i % 2], 1.0) for i in range(2000)])
    store.write_events([(f"a{i}", "signup", 1.0, 2.0) for i in range(2000)
                        if (i % 2 and i % 10 < 6) or (not i % 2 and i % 10 < 2)])
    first = admin.results("Banner", store=store)
    store.write_exposures([("Banner", f"b{i}", branch[i % 2], 3.0) for i in range(40000)])
    store.write_events([(f"b{i}", "signup", 1.0, 4.0) for i in range(0, 40000, 5)])
    second = admin.results("Banner", store=store)

    def comparison(data):
        metric = next(m for m in data["metrics"] if m["metric"] == "signup")
        return next(r for r in metric["branches"] if r["branch"] == "big")["vs_control"]

    assert comparison(second)["rate_p_value"] > comparison(first)["rate_p_value"]
    assert comparison(second)["rate_p_always_valid"] == comparison(first)["rate_p_always_valid"]
    assert comparison(store.last_read("Banner")) == comparison(second)
