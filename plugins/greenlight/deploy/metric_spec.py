"""What the canary judge watches: one ``MetricSpec`` per metric (from ``[[deploy.judge.metrics]]``),
and how a metric's counts are read out of one arm's counter totals (series summed by name and
labels, histogram buckets de-accumulated, amounts counted in their unit)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from greenlight.errors import SettingsError
from greenlight.stats.ranks import bucket_counts_from_cumulative
from greenlight.stats.sequential import HIGHER_IS_BAD, LOWER_IS_BAD

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Totals = Mapping[SeriesKey, float]

RATIO, LATENCY = "ratio", "latency"


def series_key(name: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
    """How a series is named in the totals the judge reads: sample name + sorted labels."""
    return name, tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items()))


@dataclass(frozen=True)
class MetricSpec:
    """One watched metric. ``ratio``: numerator counter per denominator counter (logins per
    request); ``latency``: a Prometheus histogram compared by Mann-Whitney on its buckets.

    ``min_effect`` is relative for ratios (0.1 = the canary's rate 10% worse) and a shift of
    P(canary slower) above ½ for latency (0.05 = slower in 55% of pairs). Labels filter series
    (a series matches when it carries all of them); matching series are summed.
    """

    name: str
    kind: str = RATIO
    numerator: str = ""
    denominator: str = ""
    numerator_labels: Mapping[str, str] = field(default_factory=dict)
    denominator_labels: Mapping[str, str] = field(default_factory=dict)
    histogram: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # "" = the kind's own: lower-is-bad for a ratio (a rate that falls), higher-is-bad for
    # latency (slower); a latency metric that defaulted to lower-is-bad would fail faster
    # canaries and never a slower one
    direction: str = ""
    min_effect: float = 0.1
    model: str = "binomial"  # binomial (events per request) | poisson (amounts per request)
    unit: float = 1.0  # the numerator is divided by it (revenue counted in typical purchases)
    # poisson: a counter of the squared amounts (demo_revenue_squared_total). With it the unit
    # is sum(x^2)/sum(x) of both arms so far, which makes the count's Poisson variance the
    # amounts' own (compound Poisson: variance = rate x E[x^2]); a fixed unit assumes every
    # amount equals it, and amounts that vary would then look more significant than they are.
    squares: str = ""
    squares_labels: Mapping[str, str] = field(default_factory=dict)
    breakage: bool = True  # take part in the breakage fast path
    floor: float = 0.0  # higher-is-bad: a canary rate surely below this passes

    def __post_init__(self) -> None:
        where = f"judge metric {self.name!r}"
        if self.kind not in (RATIO, LATENCY):
            raise SettingsError(f"{where}: kind must be ratio or latency, got {self.kind!r}")
        if not self.direction:
            object.__setattr__(self, "direction",
                               HIGHER_IS_BAD if self.kind == LATENCY else LOWER_IS_BAD)
        if self.direction not in (LOWER_IS_BAD, HIGHER_IS_BAD):
            raise SettingsError(f"{where}: direction must be {LOWER_IS_BAD} or {HIGHER_IS_BAD}, "
                                f"got {self.direction!r}")
        if self.kind == RATIO and not (self.numerator and self.denominator):
            raise SettingsError(f"{where}: a ratio needs `numerator` and `denominator` metric "
                                "names (e.g. demo_logins_total and demo_requests_total)")
        if self.kind == LATENCY and not self.histogram:
            raise SettingsError(f"{where}: a latency metric needs `histogram` (the histogram's "
                                "name without _bucket, e.g. demo_request_duration_seconds)")
        limit = 0.5 if self.kind == LATENCY else math.inf
        if not 0 < self.min_effect < limit:
            raise SettingsError(f"{where}: min_effect must be > 0"
                                + (" and < 0.5" if self.kind == LATENCY else "")
                                + f", got {self.min_effect}")
        if self.model not in ("binomial", "poisson"):
            raise SettingsError(f"{where}: model must be binomial or poisson, got {self.model!r}")
        if self.squares and (self.kind != RATIO or self.model != "poisson"):
            raise SettingsError(f"{where}: `squares` (a counter of squared amounts) goes with "
                                "kind = \"ratio\" and model = \"poisson\"")
        if not self.unit > 0:
            raise SettingsError(f"{where}: unit must be > 0, got {self.unit}")

    @classmethod
    def from_settings(cls, table: Mapping[str, Any], where: str = "judge.metrics") -> MetricSpec:
        """Build from one ``[[deploy.judge.metrics]]`` table; unknown keys are errors."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        if "name" not in table:
            raise SettingsError(f"{where}: every metric needs a `name`")
        try:
            return cls(**{k: (dict(v) if isinstance(v, Mapping) else v)
                          for k, v in table.items()})
        except (TypeError, SettingsError) as exc:
            raise SettingsError(f"{where}: {exc}") from None


DEFAULT_SPECS = (
    MetricSpec("logins per request", numerator="demo_logins_total",
               denominator="demo_requests_total", direction=LOWER_IS_BAD, min_effect=0.25),
    MetricSpec("registrations per request", numerator="demo_registrations_total",
               denominator="demo_requests_total", direction=LOWER_IS_BAD, min_effect=0.5),
    MetricSpec("errors per request", numerator="demo_errors_total",
               denominator="demo_requests_total", direction=HIGHER_IS_BAD, min_effect=1.0,
               floor=0.01),
    MetricSpec("latency", kind=LATENCY, histogram="demo_request_duration_seconds",
               direction=HIGHER_IS_BAD, min_effect=0.1),
)


def select(totals: Totals, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the series called ``name`` carrying every label of ``labels``."""
    wanted = set((labels or {}).items())
    return float(sum(v for (n, lab), v in totals.items() if n == name and wanted <= set(lab)))


def histogram_buckets(totals: Totals, histogram: str,
                      labels: Mapping[str, str] | None = None) -> dict[float, float]:
    """Counts per bucket (upper bound → count, not cumulative) of a histogram's matching
    series, summed over the other labels."""
    wanted = set((labels or {}).items())
    cumulative: dict[float, float] = {}
    for (n, lab), value in totals.items():
        if n != f"{histogram}_bucket" or not wanted <= set(lab):
            continue
        le = dict(lab).get("le")
        if le is None:
            continue
        bound = math.inf if le in ("+Inf", "inf", "Inf") else float(le)
        cumulative[bound] = cumulative.get(bound, 0.0) + value
    bounds = sorted(cumulative)
    return dict(zip(bounds, bucket_counts_from_cumulative([cumulative[b] for b in bounds])))


def ratio_counts(spec: MetricSpec, totals: Totals, unit: float | None = None
                 ) -> tuple[float, float]:
    """(events, trials) of a ratio metric in one arm's totals; events in ``unit``s (default
    the spec's)."""
    return (select(totals, spec.numerator, spec.numerator_labels) / (unit or spec.unit),
            select(totals, spec.denominator, spec.denominator_labels))


def amount_unit(spec: MetricSpec, canary: Totals, baseline: Totals) -> float:
    """The unit amounts are counted in: with ``squares``, sum(x^2)/sum(x) over both arms (the
    size of "one event" whose Poisson variance is the amounts' compound-Poisson variance; a
    pooled estimate, the same under "no change" for both arms); else the spec's fixed unit."""
    if not spec.squares:
        return spec.unit
    squares = [select(arm, spec.squares, spec.squares_labels) for arm in (canary, baseline)]
    amounts = [select(arm, spec.numerator, spec.numerator_labels) for arm in (canary, baseline)]
    # Both arms must export the squares: a baseline still on a release without the counter
    # would pool its amounts with none of their squares and shrink the unit (and the variance).
    missing = [a > 0 and q <= 0 for a, q in zip(amounts, squares)]
    if any(missing) or sum(amounts) <= 0:
        return spec.unit
    return sum(squares) / sum(amounts)
