"""Corrections for testing several metrics at once, so that the chance of any false alarm
across all watched metrics (family-wise error rate) stays at the configured alpha."""
from __future__ import annotations

from collections.abc import Sequence

from greenlight.errors import UsageError

__all__ = ["bonferroni_adjust", "holm_adjust", "rejected"]


def _check(p_values: Sequence[float]) -> None:
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"p-values must lie in [0, 1] (got {p})")


def bonferroni_adjust(p_values: Sequence[float]) -> list[float]:
    """Bonferroni: each p-value times the number of tests, capped at 1."""
    _check(p_values)
    m = len(p_values)
    return [min(1.0, p * m) for p in p_values]


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: never less powerful than Bonferroni, same guarantee.

    Sorted ascending, the i-th smallest p (0-based) is multiplied by (m − i), then made
    monotone; returned in the input's order.
    """
    _check(p_values)
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def rejected(adjusted_p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses to reject at family-wise level ``alpha`` given adjusted p-values."""
    return [p <= alpha for p in adjusted_p_values]
