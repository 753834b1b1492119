"""Balance of user attributes across branches, and false-discovery-rate control for reports.

An experiment report compares many buckets × metrics; at 5% each, one in twenty true nulls
would be called significant. Benjamini–Hochberg keeps the expected share of false discoveries
among those called significant at alpha instead (less conservative than Holm's family-wise
control, which suits the one-metric results). The balance test asks whether an attribute's
distribution differs between branches more than chance would (a chi-square test of
independence): with random assignment it should not, so a small p is a warning about
assignment or logging, as IMVU read "female 69.36% vs 69.06%".
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from greenlight.stats.distributions import chi2_contingency

from greenlight.errors import UsageError

__all__ = ["BalanceResult", "attribute_balance", "benjamini_hochberg"]


@dataclass(frozen=True)
class BalanceResult:
    """Chi-square test of independence of branch and attribute value. ``p_value`` is None when
    there is nothing to compare (one branch or one value with users)."""

    chi2: float | None
    df: int
    p_value: float | None

    def imbalanced(self, alpha: float) -> bool:
        return self.p_value is not None and self.p_value < alpha


def attribute_balance(counts: Mapping[str, Mapping[str, int]]) -> BalanceResult:
    """``counts[branch][value]`` users; branches or values without any user are left out (they
    carry no information and would make expected counts zero)."""
    branches = [b for b in counts if sum(counts[b].values()) > 0]
    values = sorted({v for b in branches for v, n in counts[b].items() if n > 0})
    for b in branches:
        for v, n in counts[b].items():
            if n < 0:
                raise UsageError(f"attribute balance: negative count {n} for {b}/{v}")
    if len(branches) < 2 or len(values) < 2:
        return BalanceResult(None, 0, None)
    table = [[int(counts[b].get(v, 0)) for v in values] for b in branches]
    chi2, p_value, df, _expected = chi2_contingency(table, correction=False)
    return BalanceResult(float(chi2), int(df), float(p_value))


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """BH-adjusted p-values (q-values), in the input order; None stays None (a comparison that
    could not be made is not counted among the tests)."""
    present = [(i, p) for i, p in enumerate(p_values) if p is not None]
    for _, p in present:
        if not (0.0 <= p <= 1.0) or math.isnan(p):
            raise UsageError(f"p-values must be in [0, 1] (got {p})")
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank, (index, p) in reversed(list(enumerate(sorted(present, key=lambda x: x[1]),
                                                    start=1))):
        running = min(running, p * m / rank)
        adjusted[index] = running
    return adjusted
