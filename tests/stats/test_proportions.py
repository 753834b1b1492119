"""The seed's figures, reproduced exactly, and the proportion helpers around them."""
from __future__ import annotations

import math

import pytest

from greenlight.errors import UsageError
from greenlight.stats import (
    binomial_rate_test,
    d_squared_rule,
    detectable_relative_change,
    sample_size_per_arm,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
)


def test_seed_figures_reproduced_exactly():
    result = two_proportion_test(64_630, 148_266, 66_903, 150_702)
    assert f"{result.control_rate:.5f}" == "0.43591"
    assert f"{result.treatment_rate:.5f}" == "0.44394"
    assert f"{result.control_variance:.5f}" == "0.24589"
    assert f"{result.treatment_variance:.5f}" == "0.24686"
    assert f"{result.p_two_sided:.6f}" == "0.000010"
    assert result.significant(0.05)
    assert result.ci_low < result.difference < result.ci_high
    assert result.ci_low > 0  # the treatment is better and the CI excludes zero
    assert result.p_greater < result.p_two_sided < result.p_less


@pytest.mark.parametrize("a,b,expected", [(8, 4, False), (32, 19, False), (62, 40, True)])
def test_seed_d_squared_table(a, b, expected):
    result = d_squared_rule(a, b)
    assert result.significant is expected
    assert result.d == (a - b) / 2 and result.n == a + b


def test_seed_table_agrees_with_exact_binomial_test():
    # canary-statistics.md: 8 vs 4 → 0.39, 32 vs 19 → 0.092, 62 vs 40 → 0.037
    figures = {(8, 4): 0.39, (32, 19): 0.092, (62, 40): 0.037}
    for (a, b), p in figures.items():
        got = binomial_rate_test(b, 1000, a, 1000, alternative="two-sided").p_value
        assert round(got, 3 if p < 0.1 else 2) == p


def test_rule_is_counted_on_the_rarer_outcome():
    # 95% success on both sides: counted on successes the rule cannot fire; on failures it does.
    on_successes = d_squared_rule(9_500, 9_700)
    assert not on_successes.significant
    result = seed_rule_on_rarer_outcome(9_700, 10_000, 9_500, 10_000)
    assert result.outcome == "non-events"
    assert (result.a, result.b) == (500, 300)
    assert result.significant
    rare = seed_rule_on_rarer_outcome(4, 1000, 8, 1000)
    assert rare.outcome == "events" and (rare.a, rare.b) == (8, 4) and not rare.significant


def test_identical_arms_are_not_significant_and_empty_arm_is_harmless():
    same = two_proportion_test(0, 100, 0, 100)
    assert same.p_two_sided == 1.0 and same.z == 0.0
    empty = two_proportion_test(0, 0, 5, 10)
    assert empty.p_two_sided == 1.0 and math.isinf(empty.ci_high)


def test_bad_counts_say_what_was_wrong():
    with pytest.raises(UsageError, match="cannot exceed"):
        two_proportion_test(11, 10, 1, 10)
    with pytest.raises(UsageError, match=">= 0"):
        two_proportion_test(-1, 10, 1, 10)


@pytest.mark.parametrize("rate,expected", [(0.02, 147_000), (0.05, 57_000), (0.2, 12_100),
                                           (0.5, 3_140), (0.95, 304)])
def test_sample_size_matches_reference_table(rate, expected):
    n = sample_size_per_arm(rate, 0.10, alpha=0.01, power=0.95)
    assert abs(n - expected) / expected < 0.01


def test_detectable_change_inverts_sample_size():
    n = sample_size_per_arm(0.2, 0.25)
    assert detectable_relative_change(0.2, n) == pytest.approx(0.25, abs=1e-3)
    assert detectable_relative_change(0.2, 0) == 1.0
    assert detectable_relative_change(0.02, 3) == 1.0


def test_breakage_fast_path_decides_on_seven_events():
    seven = binomial_rate_test(7, 350, 0, 350, alternative="less")
    assert seven.p_value == pytest.approx(0.5 ** 7)
    assert seven.significant(0.01)
    six = binomial_rate_test(6, 300, 0, 300, alternative="less")
    assert not six.significant(0.01)


def test_five_fold_error_rise_is_caught_with_unequal_traffic():
    # 19 baseline hosts vs 1 canary: canary share of traffic is 5%.
    result = binomial_rate_test(38, 19_000, 10, 1_000, alternative="greater")
    assert result.expected_share == pytest.approx(0.05)
    assert result.significant(0.01)
    healthy = binomial_rate_test(38, 19_000, 2, 1_000, alternative="greater")
    assert not healthy.significant(0.01)
