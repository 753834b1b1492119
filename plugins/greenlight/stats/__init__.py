"""The project's one statistics package: the canary judge and experiment results both use it,
so "significant" means the same thing everywhere. Pure functions over counts and summaries;
scipy supplies the distributions."""
from __future__ import annotations

import importlib
from pathlib import Path

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
from greenlight.stats.srm import SampleRatioResult, sample_ratio_mismatch

__all__ = [
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

# Modules owned by the canary judge (sequential tests, rank tests): re-exported when present.
# Checked by file rather than by catching ImportError, so a real error in them is never hidden.
for _module_name in ("sequential", "ranks"):
    if (Path(__file__).parent / f"{_module_name}.py").exists():
        _module = importlib.import_module(f"greenlight.stats.{_module_name}")
        for _name in getattr(_module, "__all__", ()):
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
