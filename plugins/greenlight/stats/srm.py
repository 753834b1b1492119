"""Sample-ratio mismatch: exposure counts that stray from the configured weights mean the
assignment (or the logging of exposures) is broken, and then no result of the experiment can be
trusted — so results warn loudly instead of reporting a winner."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from greenlight.stats.distributions import chisquare

from greenlight.errors import UsageError

__all__ = ["SampleRatioResult", "sample_ratio_mismatch"]


@dataclass(frozen=True)
class SampleRatioResult:
    """Chi-squared of observed against expected counts; ``mismatch`` when p < threshold."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    threshold: float
    mismatch: bool

    def as_dict(self) -> dict:
        return asdict(self)


def sample_ratio_mismatch(counts: Mapping[str, int], weights: Mapping[str, float],
                          threshold: float = 0.001) -> SampleRatioResult:
    """Chi-squared goodness of fit of ``counts`` per branch against ``weights`` per branch.

    Weights need not sum to 1 (they are normalised). A branch with weight 0 but exposures is an
    immediate mismatch. The usual alarm level is p < 0.001: a real SRM gives tiny p-values, and
    a stricter level keeps false alarms rare when the check is read every day.
    """
    if set(counts) != set(weights):
        raise UsageError(f"branches of counts {sorted(counts)} and weights {sorted(weights)} "
                         "differ")
    if any(w < 0 for w in weights.values()) or any(c < 0 for c in counts.values()):
        raise UsageError("counts and weights must be >= 0")
    total_weight = sum(weights.values())
    total = sum(counts.values())
    if total_weight <= 0:
        raise UsageError("at least one branch needs a positive weight")
    names = sorted(counts)
    expected = {name: total * weights[name] / total_weight for name in names}
    observed = {name: int(counts[name]) for name in names}
    if total == 0:
        return SampleRatioResult(observed, expected, 0.0, 1.0, threshold, False)
    if any(expected[n] == 0 and observed[n] > 0 for n in names):
        return SampleRatioResult(observed, expected, float("inf"), 0.0, threshold, True)
    live = [n for n in names if expected[n] > 0]
    if len(live) < 2:
        return SampleRatioResult(observed, expected, 0.0, 1.0, threshold, False)
    stat, p = chisquare([observed[n] for n in live], [expected[n] for n in live])
    return SampleRatioResult(observed, expected, float(stat), float(p), threshold,
                             bool(p < threshold))
