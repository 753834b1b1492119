"""Welch's t-test, the sample-ratio check and multiple-testing corrections against scipy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from greenlight.errors import UsageError
from greenlight.stats import (
    bonferroni_adjust,
    holm_adjust,
    rejected,
    sample_ratio_mismatch,
    welch_t_test,
)


def test_welch_matches_scipy_on_raw_samples():
    from scipy import stats as sp  # here: every xdist worker collects this module

    rng = np.random.default_rng(7)
    control, treatment = rng.exponential(2.0, 400), rng.exponential(2.4, 300)
    result = welch_t_test(len(control), control.mean(), control.var(ddof=1),
                          len(treatment), treatment.mean(), treatment.var(ddof=1))
    reference = sp.ttest_ind(treatment, control, equal_var=False)
    assert result.t == pytest.approx(reference.statistic)
    assert result.p_two_sided == pytest.approx(reference.pvalue)
    ci = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_welch_on_seed_figures_matches_proportion_test():
    # Conversion as a per-user 0/1 mean: Welch agrees with the z-test at this size.
    n1, x1, n2, x2 = 148_266, 64_630, 150_702, 66_903
    var = lambda x, n: (x - x * x / n) / (n - 1)  # noqa: E731 - sample variance of 0/1 data
    result = welch_t_test(n1, x1 / n1, var(x1, n1), n2, x2 / n2, var(x2, n2))
    assert f"{result.p_two_sided:.6f}" == "0.000010"


def test_welch_degenerate_cases():
    tiny = welch_t_test(1, 3.0, 0.0, 10, 2.0, 1.0)
    assert math.isnan(tiny.p_two_sided)
    certain = welch_t_test(10, 3.0, 0.0, 10, 5.0, 0.0)
    assert certain.p_two_sided == 0.0 and certain.p_greater == 0.0 and certain.p_less == 1.0
    with pytest.raises(UsageError):
        welch_t_test(10, 1.0, -1.0, 10, 1.0, 1.0)


def test_srm_flags_broken_split_and_passes_a_fair_one():
    fair = sample_ratio_mismatch({"control": 50_100, "enhanced": 49_900},
                                 {"control": 0.5, "enhanced": 0.5})
    assert not fair.mismatch and fair.p_value > 0.1
    broken = sample_ratio_mismatch({"control": 51_000, "enhanced": 49_000},
                                   {"control": 1, "enhanced": 1})
    assert broken.mismatch and broken.p_value < 1e-6
    assert broken.expected == {"control": 50_000.0, "enhanced": 50_000.0}
    ghost = sample_ratio_mismatch({"control": 10, "off": 1}, {"control": 1.0, "off": 0.0})
    assert ghost.mismatch
    with pytest.raises(UsageError, match="differ"):
        sample_ratio_mismatch({"a": 1}, {"b": 1.0})


def test_bonferroni_and_holm():
    p = [0.01, 0.04, 0.03, 0.005]
    assert bonferroni_adjust(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    holm = holm_adjust(p)
    assert holm == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert rejected(holm, 0.05) == [True, False, False, True]
    assert rejected(bonferroni_adjust(p), 0.05) == [True, False, False, True]
    assert all(h <= b for h, b in zip(holm, bonferroni_adjust(p)))
    with pytest.raises(UsageError):
        holm_adjust([1.5])
