"""The project's one statistics package: the canary judge and experiment results both use it,
so "significant" means the same thing everywhere. Pure functions over counts and summaries;
scipy supplies the distributions."""
from __future__ import annotations

from greenlight.stats.means import WelchResult, welch_t_test
from greenlight.stats.multiple import bonferroni_adjust, holm_adjust, rejected
from greenlight.stats.proportions import (
    BinomialRateResult,
    SeedRuleResult,
    TwoProportionResult,
    binomial_rate_test,
    d_squared_rule,
    detectable_relative_change,
    sample_size_per_arm,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
)
from greenlight.stats.ranks import (
    BLOCK,
    MannWhitneyResult,
    bucket_counts_from_cumulative,
    mann_whitney_buckets,
    superiority_arrays,
    superiority_design_effect,
)
from greenlight.stats.sequential import (
    BreakageResult,
    SprtBounds,
    always_valid_p_value,
    breakage_zero_rate,
    breakage_zero_rate_p,
    gaussian_llr,
    msprt_p_value,
    overshoot,
    rate_ratio_llr,
    sprt_bounds,
    sprt_decision,
    two_proportion_information,
    two_proportion_llr,
)
from greenlight.stats.srm import SampleRatioResult, sample_ratio_mismatch

__all__ = [
    "BLOCK",
    "BreakageResult",
    "MannWhitneyResult",
    "SprtBounds",
    "always_valid_p_value",
    "breakage_zero_rate",
    "breakage_zero_rate_p",
    "bucket_counts_from_cumulative",
    "gaussian_llr",
    "mann_whitney_buckets",
    "msprt_p_value",
    "overshoot",
    "rate_ratio_llr",
    "sprt_bounds",
    "sprt_decision",
    "superiority_arrays",
    "superiority_design_effect",
    "two_proportion_information",
    "two_proportion_llr",
    "BinomialRateResult",
    "SampleRatioResult",
    "SeedRuleResult",
    "TwoProportionResult",
    "WelchResult",
    "binomial_rate_test",
    "bonferroni_adjust",
    "d_squared_rule",
    "detectable_relative_change",
    "holm_adjust",
    "rejected",
    "sample_ratio_mismatch",
    "sample_size_per_arm",
    "seed_rule_on_rarer_outcome",
    "two_proportion_test",
    "welch_t_test",
]
