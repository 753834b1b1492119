"""The canary judge: compares canary hosts with baseline hosts over the same window, metric by
metric, and says fail / pass / pending after every scrape.

Pure: it takes request counts (totals since the window started, per series) and returns a
verdict; scraping lives in ``greenlight.deploy.metrics``. It is read at every scrape, so each
metric runs a sequential test (Wald's SPRT, ``greenlight.stats.sequential``) whose false-alarm
rate holds under continuous monitoring, and the family of metrics is held at ``alpha`` with
Holm over always-valid p-values. A share of alpha (``breakage_share``) goes to the breakage fast
path: an exact binomial test that catches a rate falling to zero, or errors up five-fold, within
seconds. See docs/judge.md for the settings and what the judge can see at a given traffic.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import norm
from scipy.stats import t as student_t

from greenlight.errors import SettingsError, UsageError
from greenlight.stats import (
    binomial_rate_test,
    detectable_relative_change,
    holm_adjust,
    sample_size_per_arm,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
)
from greenlight.stats.ranks import (
    BLOCK,
    bucket_counts_from_cumulative,
    mann_whitney_buckets,
    superiority_arrays,
    superiority_design_effect,
)
from greenlight.stats.sequential import (
    HIGHER_IS_BAD,
    LOWER_IS_BAD,
    MIN_EVENTS,
    always_valid_p_value,
    breakage_zero_rate_p,
    gaussian_llr,
    overshoot,
    rate_ratio_llr,
    sprt_bounds,
    two_proportion_information,
    two_proportion_llr,
)

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Totals = Mapping[SeriesKey, float]

RATIO, LATENCY = "ratio", "latency"
OUTCOMES = ("fail", "pass", "pending")
BREAKAGE_RATIO = 5.0  # "errors up five-fold" of the breakage fast path
DEFAULT_BETA = 0.04  # miss rate at the aimed alternative (AIM x min_effect), Wald's pass line
DEFAULT_BREAKAGE_SHARE = 0.2  # of alpha, for the exact fast path: 9 events at 1v1, 1 metric
DEFAULT_MARGIN = 0.1  # of alpha, spent nowhere: the approximations' error (Thresholds)
# The SPRT ends at this multiple of the fixed-sample information (at least DEFAULT_MIN_LOOKS
# looks), its pass line rising from Wald's as (I/horizon)^DEFAULT_PASS_POWER to the fail line.
DEFAULT_HORIZON = 1.6
DEFAULT_PASS_POWER = 4.0
DEFAULT_MIN_LOOKS = 10.0
# The SPRT's alternative, as a share of min_effect: aimed a little below the change it must
# catch, it catches min_effect itself more often (>= 96%) and sooner in the slow tail.
DEFAULT_AIM = 0.9
DETECT_POWER = 0.95  # "detectable" and "requests needed" are at 95% power
# Latency decides only once this many scrape intervals hold requests: a stalled host makes all
# the requests of a second or a few slow together, which only a comparison between intervals
# and blocks of intervals can tell from a slower release (a regression is in every block).
MIN_INTERVALS = 10


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


@dataclass(frozen=True)
class Thresholds:
    """Where each metric's tests decide, given alpha split over metrics and fast path.

    The sequential test is Wald's SPRT with a pass line that closes on the fail line: it
    starts at Wald's ``lower`` and rises as (I/horizon)^``pass_power`` to meet ``upper`` at
    the information ``horizon`` (``horizon_factor`` × the information of the fixed-sample test
    at the metric's alpha and 95% power), where whatever has not failed passes. Every verdict
    comes by then, so the slow tail of the time to fail is cut (those few slow paths pass
    instead). The fail line is Wald's, so the always-valid p-value 1/LR (Ville) holds at every
    look and any stopping rule, and Holm still combines metrics: a pass line only stops paths,
    it never adds a fail. With few scrapes per fixed sample (a step of information ``step``
    per look) the horizon is at least ``min_looks`` such steps: a test read a handful of times
    is already conservative, and closing on it after five looks costs detection for nothing.
    Ratios only (``closing``): the latency test's variance is re-estimated at every look
    (design effect × small-sample factor), so its information is no steady clock, and closing
    on it cost a slower release under 5-s slow spells 4–9 points of detection.

    The judge reads once per scrape, so it adds Siegmund's overshoot to the LLR when testing
    the fail line (``siegmund=False``: the plain line). Not to the pass line: with large steps
    moving it in costs detection, and a late pass only costs time. ``margin`` is a share of
    alpha spent nowhere: the SPRT (a nearly Gaussian LLR, nearly corrected for discrete looks)
    and the exact breakage path each fail healthy canaries at up to their share, so with the
    whole of alpha split between them the worst cells sat at its edge (0.7–0.98% in 16,000-run
    checks), where a 4,000-run benchmark cell reads above 1% now and then.
    """

    alpha: float
    beta: float
    metrics: int
    breakage_share: float
    aim: float = DEFAULT_AIM
    siegmund: bool = True
    margin: float = DEFAULT_MARGIN
    horizon_factor: float = DEFAULT_HORIZON
    pass_power: float = DEFAULT_PASS_POWER
    min_looks: float = DEFAULT_MIN_LOOKS

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1 - self.breakage_share:
            raise UsageError(f"margin must be in [0, 1 - breakage_share), got {self.margin}")
        if not self.horizon_factor > 0:
            raise UsageError(f"horizon_factor must be > 0 (inf: Wald's open test), got "
                             f"{self.horizon_factor}")
        if not self.pass_power > 0 or self.min_looks < 0:
            raise UsageError(f"pass_power must be > 0 and min_looks >= 0, got "
                             f"{self.pass_power}, {self.min_looks}")

    @property
    def sprt_alpha(self) -> float:  # family-wise, for Holm over always-valid p-values
        return self.alpha * (1 - self.breakage_share - self.margin)

    @property
    def breakage_alpha(self) -> float:  # per metric (Bonferroni)
        return self.alpha * self.breakage_share / self.metrics

    @property
    def horizon(self) -> float:
        """Information at which the test ends: ``horizon_factor`` × that of the fixed-sample
        test at the metric's alpha with 95% power ((aim·(z_α + z_β))² in LLR units)."""
        fixed = (self.aim * (norm.isf(self.sprt_alpha / self.metrics)
                             + norm.isf(1 - DETECT_POWER))) ** 2
        return self.horizon_factor * fixed

    @property
    def upper(self) -> float:  # the first Holm step: p = 1/LR <= sprt_alpha / m
        return math.log(self.metrics / self.sprt_alpha)

    @property
    def lower(self) -> float:  # Wald's pass line, where the closing pass line starts
        return sprt_bounds(self.sprt_alpha / self.metrics, self.beta).lower

    def horizon_at(self, step):
        """The horizon for looks ``step`` of information apart (at least ``min_looks``)."""
        return np.maximum(self.horizon, self.min_looks * np.asarray(step, float))

    def pass_line(self, information, step=0.0, closing: bool = True):
        """The pass line at this information: Wald's, rising to meet the fail line at the
        horizon (``closing=False``: Wald's, flat)."""
        if not closing or math.isinf(self.horizon):
            return np.zeros_like(np.asarray(information, float)) + self.lower
        share = np.clip(np.asarray(information, float) / self.horizon_at(step), 0.0, 1.0)
        return self.lower + (self.upper - self.lower) * share ** self.pass_power

    def decide(self, llr, information, previous_information, closing: bool = True):
        """``(fail, pass)`` of one metric watched alone at one look, vectorised: fail when
        LLR + overshoot reaches the fail line, pass at or below the pass line."""
        info = np.asarray(information, float)
        step = np.clip(info - np.asarray(previous_information, float), 0.0, None)
        fail = np.asarray(llr, float) + self.overshoot(info, previous_information) >= self.upper
        line = self.pass_line(info, step, closing)
        passed = ~fail & (info > 0) & (np.asarray(llr, float) <= line)
        return fail, passed

    def overshoot(self, information, previous_information):
        """How far the LLR may have passed a line between two looks (0 without Siegmund)."""
        if not self.siegmund:
            return np.zeros_like(np.asarray(information, float)) + 0.0
        return overshoot(information, previous_information)


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


def ratio_evidence(spec: MetricSpec, canary_events, canary_trials, baseline_events,
                   baseline_trials, aim: float = DEFAULT_AIM):
    """(LLR of the sequential test, p-value of the breakage fast path) for a ratio metric.

    The SPRT aims at a change of ``aim`` × ``min_effect``. Works on numbers or numpy arrays:
    the judge calls it once per scrape, bench/judge.py on thousands of simulated canaries at
    once, so both run the same test.
    """
    a, n_c = np.asarray(canary_events, float), np.asarray(canary_trials, float)
    b, n_b = np.asarray(baseline_events, float), np.asarray(baseline_trials, float)
    llr = two_proportion_llr(a, n_c, b, n_b, spec.min_effect * aim, spec.direction, spec.model)
    breakage_p = np.ones_like(np.asarray(llr, float))
    if spec.breakage:
        if spec.direction == LOWER_IS_BAD:
            breakage_p = breakage_zero_rate_p(a, n_c, b, n_b)
        else:
            # errors up five-fold: exact conditional binomial SPRT, read as always-valid p.
            trials = n_c + n_b
            pooled = np.where(trials > 0, (a + b) / np.where(trials > 0, trials, 1), 0.0)
            fold = rate_ratio_llr(a, n_c, b, n_b, BREAKAGE_RATIO)
            breakage_p = np.where(pooled <= 0.5, always_valid_p_value(fold), 1.0)
    if np.ndim(llr) == 0:
        return float(llr), float(breakage_p)
    return llr, breakage_p


def ratio_information(spec: MetricSpec, canary_events, canary_trials, baseline_events,
                      baseline_trials, aim: float = DEFAULT_AIM):
    """The information of the ratio's LLR so far (its variance under "no change"); its growth
    from one look to the next sizes Siegmund's overshoot correction."""
    return two_proportion_information(canary_events, canary_trials, baseline_events,
                                      baseline_trials, spec.min_effect * aim, spec.direction,
                                      spec.model)


def ratio_look(spec: MetricSpec, t: Thresholds, canary_events, canary_trials,
               baseline_events, baseline_trials, previous_information=0.0):
    """What the judge decides at one look when this metric is the only one watched:
    ``(fail, pass, information)``, vectorised. ``previous_information`` is the value this
    returned at the previous look (0 at the first). ``Judge.observe`` applies the same lines
    (with Holm over several metrics); bench/judge.py and the tests run this on thousands of
    simulated canaries at once.
    """
    llr, breakage_p = ratio_evidence(spec, canary_events, canary_trials, baseline_events,
                                     baseline_trials, t.aim)
    info = ratio_information(spec, canary_events, canary_trials, baseline_events,
                             baseline_trials, t.aim)
    fail, passed = t.decide(llr, info, previous_information)
    broken = np.asarray(breakage_p) <= t.breakage_alpha
    return fail | broken, passed & ~broken, info


def small_sample_factor(intervals, alpha: float):
    """(t / z)² at one-sided ``alpha`` with the blocks' degrees of freedom: the variance of
    the design effect is estimated from few blocks early in the window, and a test that
    plugged it in as if known would be too bold (Student's correction)."""
    blocks = np.ceil(np.asarray(intervals, float) / BLOCK)
    df = np.maximum(blocks - 1, 1.0)
    return (student_t.isf(alpha, df) / norm.isf(alpha)) ** 2


def latency_evidence(spec: MetricSpec, canary_intervals, baseline_intervals,
                     aim: float = DEFAULT_AIM, clustered: bool = True,
                     small_sample_alpha: float | None = None):
    """The latency test from bucket counts per scrape interval (arrays of shape
    (..., intervals, buckets), canary and baseline, same buckets lowest first):
    ``(llr, information, harm, variance, design_effect, intervals, variance_factor)``,
    vectorised over the leading axes like :func:`ratio_evidence`.

    The SPRT watches harm = P(canary slower) + ½P(tie) − ½ (sign flipped for lower-is-bad)
    against ``aim`` × ``min_effect`` with Mann-Whitney's tie-corrected variance, multiplied
    (``clustered``) by the design effect of the intervals and blocks of intervals (never
    below 1: requests slowed together by a stalled host count as one piece of evidence, not
    fifty) and by Student's small-sample factor at ``small_sample_alpha`` (that design effect
    is estimated from few blocks early on). ``variance_factor`` is the product. Before
    ``MIN_INTERVALS`` intervals the LLR and information are 0 (no evidence either way).
    """
    c, b = np.asarray(canary_intervals, float), np.asarray(baseline_intervals, float)
    superiority, variance = superiority_arrays(c.sum(-2), b.sum(-2))
    deff, intervals = superiority_design_effect(c, b)
    deff = np.maximum(deff, 1.0) if clustered else np.ones_like(np.asarray(deff, float))
    factor = deff
    if clustered and small_sample_alpha:
        factor = deff * small_sample_factor(intervals, small_sample_alpha)
    variance = np.asarray(variance, float) * factor
    shift = np.asarray(superiority, float) - 0.5
    harm = shift if spec.direction == HIGHER_IS_BAD else -shift
    live = (np.asarray(intervals) >= MIN_INTERVALS) & (variance > 0)
    alternative = spec.min_effect * aim
    safe = np.where(live, variance, 1.0)
    llr = np.where(live, gaussian_llr(harm, 0.0, alternative, safe), 0.0)
    info = np.where(live, alternative ** 2 / safe, 0.0)
    if np.ndim(llr) == 0:
        return (float(llr), float(info), float(harm), float(variance), float(deff),
                int(intervals), float(factor))
    return llr, info, harm, variance, deff, intervals, factor


def latency_look(spec: MetricSpec, t: Thresholds, canary_intervals, baseline_intervals,
                 previous_information=0.0, clustered: bool = True):
    """``(fail, pass, information)`` of a latency metric watched alone, vectorised: what
    ``Judge.observe`` decides at this look (bench/judge.py's stall rows)."""
    llr, info, *_ = latency_evidence(spec, canary_intervals, baseline_intervals, t.aim,
                                     clustered, t.sprt_alpha / t.metrics)
    fail, passed = t.decide(llr, info, previous_information, closing=False)
    return fail, passed, info


@dataclass
class MetricVerdict:
    """What the judge knows about one metric at this scrape, and why it decided."""

    name: str
    kind: str
    direction: str
    status: str = "pending"
    reason: str = "not enough data yet"
    canary_events: float = 0.0
    canary_trials: float = 0.0
    baseline_events: float = 0.0
    baseline_trials: float = 0.0
    canary_value: float | None = None
    baseline_value: float | None = None
    relative_change: float | None = None
    llr: float = 0.0
    overshoot: float = 0.0  # Siegmund's correction at this look (added to test upper)
    information: float = 0.0  # the LLR's variance under "no change" so far
    lower: float = 0.0  # the pass line at this information (it closes on the fail line)
    upper: float = 0.0  # the fail line (LLR + overshoot is tested against it)
    p_value: float = 1.0  # always-valid (1 / largest likelihood ratio so far)
    adjusted_p: float = 1.0  # Holm over all metrics
    breakage_p: float = 1.0
    fixed_z_p: float | None = None  # the fixed-sample test, for comparison only (not used)
    seed_rule: str = ""  # D² > N on the rarer outcome, shown beside the general test
    unit: float = 1.0  # ratio: the numerator's counting unit (amounts: sum(x^2)/sum(x))
    detectable: float | None = None  # smallest effect visible at the traffic so far
    requests_needed: float | None = None  # more canary requests for the minimum effect
    min_effect: float = 0.0
    decided_at_s: float | None = None
    intervals: int = 0  # latency: scrape intervals with requests so far
    design_effect: float = 1.0  # latency: variance inflation for requests slowed together
    variance_factor: float = 1.0  # latency: design effect x small-sample factor, as applied

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    """The judge's answer at one scrape: ``outcome`` in fail / pass / pending."""

    outcome: str
    reason: str
    elapsed_s: float
    metrics: list[MetricVerdict]
    alpha: float
    max_window_s: float

    @property
    def failing(self) -> list[MetricVerdict]:
        return [m for m in self.metrics if m.status == "fail"]

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "reason": self.reason, "elapsed_s": self.elapsed_s,
                "alpha": self.alpha, "max_window_s": self.max_window_s,
                "metrics": [m.as_dict() for m in self.metrics]}

    def to_json(self) -> str:
        return json.dumps(_finite(self.as_dict()), sort_keys=True)

    @property
    def table(self) -> str:
        return render_table(self)


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as strings so the ledger stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class Judge:
    """Sequential canary judge over a fixed set of metrics.

    ``observe`` is called after every scrape with the totals of the window so far (canary
    arm, baseline arm). Decisions are sticky: a metric that crossed a line stays decided.
    """

    def __init__(self, specs: Iterable[MetricSpec] | None = None, alpha: float = 0.01,
                 max_window_s: float = 300.0, on_timeout: str = "fail", beta: float = DEFAULT_BETA,
                 breakage_share: float = DEFAULT_BREAKAGE_SHARE, min_window_s: float = 0.0,
                 aim: float = DEFAULT_AIM, siegmund: bool = True, clustered: bool = True):
        self.specs = list(DEFAULT_SPECS if specs is None else specs)
        if not self.specs:
            raise UsageError("the judge needs at least one metric to watch")
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise UsageError(f"judge metric names must be unique, got {names}")
        if on_timeout not in ("fail", "pass"):
            raise UsageError(f"on_timeout must be fail or pass, got {on_timeout!r}")
        if not 0 < breakage_share < 1:
            raise UsageError(f"breakage_share must be in (0, 1), got {breakage_share}")
        if not max_window_s > 0:
            raise UsageError(f"max_window_s must be > 0, got {max_window_s}")
        if not 0 < aim <= 1:
            raise UsageError(f"aim must be in (0, 1], got {aim}")
        sprt_bounds(alpha, beta)  # validates both
        self.alpha, self.beta = alpha, beta
        self.max_window_s, self.on_timeout = float(max_window_s), on_timeout
        self.min_window_s = float(min_window_s)
        self.thresholds = Thresholds(alpha, beta, len(self.specs), breakage_share, aim, siegmund)
        self._max_llr = {s.name: -math.inf for s in self.specs}
        self._information = {s.name: 0.0 for s in self.specs}
        self._decided: dict[str, tuple[str, str, float]] = {}
        self._started: float | None = None
        self.clustered = clustered
        # latency: cumulative buckets per arm at the previous look, and each interval's growth
        self._last_buckets: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self._increments: dict[str, list[tuple[dict[float, float], dict[float, float]]]] = {
            s.name: [] for s in self.specs if s.kind == LATENCY}

    @classmethod
    def from_settings(cls, table: Mapping[str, Any] | None, *, max_window_s: float | None = None,
                      on_timeout: str | None = None, where: str = "[deploy.judge]") -> Judge:
        """Build from the settings' judge table (``alpha``, ``beta``, ``breakage_share``,
        ``min_window_s``, ``max_window_s``, ``on_timeout``, ``[[metrics]]``); keyword
        arguments given here (the deploy's observe window) win over the table."""
        table = dict(table or {})
        known = {"alpha", "beta", "breakage_share", "min_window_s", "max_window_s",
                 "on_timeout", "metrics", "baseline", "prometheus_url", "scrape_timeout_s"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        metrics = table.get("metrics")
        specs = None
        if metrics is not None:
            if not isinstance(metrics, list) or not all(isinstance(m, Mapping) for m in metrics):
                raise SettingsError(f"{where}: `metrics` must be an array of tables")
            specs = [MetricSpec.from_settings(m, f"{where} metrics[{i}]")
                     for i, m in enumerate(metrics)]
        kw: dict[str, Any] = {}
        for key in ("alpha", "beta", "breakage_share", "min_window_s", "max_window_s"):
            if key in table:
                value = table[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SettingsError(f"{where}: `{key}` must be a number, got {value!r}")
                kw[key] = float(value)
        if "on_timeout" in table:
            kw["on_timeout"] = table["on_timeout"]
        if max_window_s is not None:
            kw["max_window_s"] = max_window_s
        if on_timeout is not None:
            kw["on_timeout"] = on_timeout
        try:
            return cls(specs, **kw)
        except UsageError as exc:
            raise SettingsError(f"{where}: {exc}") from None

    def observe(self, canary: Totals, baseline: Totals,
                elapsed_s: float | None = None) -> Verdict:
        """Judge the window so far. ``elapsed_s`` defaults to the time since the first call."""
        if elapsed_s is None:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            elapsed_s = now - self._started
        verdicts = [self._judge_metric(spec, canary, baseline) for spec in self.specs]
        adjusted = holm_adjust([v.p_value for v in verdicts])
        t = self.thresholds
        for spec, v, adj in zip(self.specs, verdicts, adjusted):
            v.adjusted_p = adj
            previous = self._decided.get(spec.name, ("pending",))[0]
            if previous != "fail":  # a passed metric can still break: the fast path watches on
                decision = None
                if v.breakage_p <= t.breakage_alpha:
                    decision = ("fail", f"breakage fast path: exact binomial p = "
                                        f"{v.breakage_p:.2g} <= {t.breakage_alpha:.2g}")
                elif previous == "pass":
                    decision = None
                elif adj <= t.sprt_alpha:
                    decision = ("fail", f"sequential test: worse by >= {spec.min_effect:g} "
                                        f"(Holm p = {adj:.2g} <= {t.sprt_alpha:.2g})")
                elif (v.information > 0 and v.llr <= v.lower
                      and elapsed_s >= self.min_window_s):
                    decision = ("pass", f"sequential test: no change of {spec.min_effect:g} "
                                        f"(LLR {v.llr:.2f} <= {v.lower:.2f})")

                elif (spec.floor > 0 and spec.direction == HIGHER_IS_BAD and spec.kind == RATIO
                      and elapsed_s >= self.min_window_s and v.canary_trials > 0
                      and _upper_bound(v.canary_events, v.canary_trials, t.sprt_alpha)
                      < spec.floor):
                    decision = ("pass", f"canary rate surely below the floor {spec.floor:g}")
                if decision:
                    self._decided[spec.name] = (*decision, elapsed_s)
            if spec.name in self._decided:
                v.status, v.reason, v.decided_at_s = self._decided[spec.name]
        outcome, reason = self._overall(verdicts, elapsed_s)
        return Verdict(outcome, reason, float(elapsed_s), verdicts, self.alpha,
                       self.max_window_s)

    def _overall(self, verdicts: list[MetricVerdict], elapsed_s: float) -> tuple[str, str]:
        failing = [v.name for v in verdicts if v.status == "fail"]
        if failing:
            return "fail", "failing: " + ", ".join(failing)
        if all(v.status == "pass" for v in verdicts):
            return "pass", "all metrics pass"
        if elapsed_s >= self.max_window_s:
            undecided = ", ".join(v.name for v in verdicts if v.status == "pending")
            return self.on_timeout, (f"window of {self.max_window_s:g} s over with "
                                     f"{undecided} undecided: on_timeout = {self.on_timeout}")
        return "pending", "waiting for enough requests"

    def _judge_metric(self, spec: MetricSpec, canary: Totals, baseline: Totals) -> MetricVerdict:
        t = self.thresholds
        v = MetricVerdict(spec.name, spec.kind, spec.direction, min_effect=spec.min_effect)
        if spec.kind == RATIO:
            self._ratio(spec, canary, baseline, v)
        else:
            self._latency(spec, canary, baseline, v)
        previous = self._information[spec.name]
        v.lower = float(t.pass_line(v.information, max(0.0, v.information - previous),
                                    closing=spec.kind == RATIO))
        v.upper = t.upper
        v.overshoot = float(t.overshoot(v.information, previous))
        self._information[spec.name] = max(previous, v.information)
        # read once per scrape: the path may have passed the line between looks (Siegmund)
        self._max_llr[spec.name] = max(self._max_llr[spec.name], v.llr + v.overshoot)
        v.p_value = always_valid_p_value(self._max_llr[spec.name])
        return v

    def _ratio(self, spec: MetricSpec, canary: Totals, baseline: Totals,
               v: MetricVerdict) -> None:
        t = self.thresholds
        unit = amount_unit(spec, canary, baseline)
        a, n_c = ratio_counts(spec, canary, unit)
        b, n_b = ratio_counts(spec, baseline, unit)
        v.unit = unit
        v.canary_events, v.canary_trials, v.baseline_events, v.baseline_trials = a, n_c, b, n_b
        if n_c <= 0 or n_b <= 0:
            v.reason = "no requests yet on " + ("canary" if n_c <= 0 else "baseline")
            return
        v.canary_value, v.baseline_value = a / n_c, b / n_b
        if v.baseline_value:
            v.relative_change = v.canary_value / v.baseline_value - 1
        v.llr, v.breakage_p = ratio_evidence(spec, a, n_c, b, n_b, t.aim)
        v.information = float(ratio_information(spec, a, n_c, b, n_b, t.aim))
        rarer = min(a + b, n_c + n_b - a - b) if spec.model == "binomial" else a + b
        if rarer < MIN_EVENTS:
            v.reason = f"{rarer:g} events so far; the sequential test starts at {MIN_EVENTS}"
        else:
            v.reason = "collecting evidence"
        if spec.model == "binomial" and a <= n_c and b <= n_b:
            ai, bi, nci, nbi = (int(round(x)) for x in (a, b, n_c, n_b))
            fixed = two_proportion_test(bi, nbi, ai, nci)
            v.fixed_z_p = fixed.p_less if spec.direction == LOWER_IS_BAD else fixed.p_greater
            if abs(nci - nbi) <= 0.1 * max(nci, nbi):
                seed = seed_rule_on_rarer_outcome(bi, nbi, ai, nci)
                v.seed_rule = (f"D={seed.d:g} N={seed.n} "
                               + ("D²>N" if seed.significant else "D²<=N") + f" ({seed.outcome})")
            else:
                exact = binomial_rate_test(bi, nbi, ai, nci, "less" if spec.direction ==
                                           LOWER_IS_BAD else "greater")
                v.seed_rule = f"unequal traffic: exact binomial p={exact.p_value:.2g}"
        pooled = (a + b) / (n_c + n_b)
        alpha_m = t.sprt_alpha / t.metrics
        if spec.model == "binomial" and 0 < pooled < 1:
            n_eff = 2 / (1 / n_c + 1 / n_b)  # equal-arm size with the same variance
            v.detectable = detectable_relative_change(pooled, n_eff, alpha_m, DETECT_POWER)
            change = spec.min_effect if spec.direction == LOWER_IS_BAD else -spec.min_effect
            try:
                n95 = sample_size_per_arm(pooled, change, alpha_m, DETECT_POWER)
            except UsageError:
                n95 = None
            if n95 is not None:
                k = n_b / n_c
                v.requests_needed = max(0.0, math.ceil(n95 * (1 + 1 / k) / 2 - n_c))

    def _latency(self, spec: MetricSpec, canary: Totals, baseline: Totals,
                 v: MetricVerdict) -> None:
        t = self.thresholds
        cb = histogram_buckets(canary, spec.histogram, spec.labels)
        bb = histogram_buckets(baseline, spec.histogram, spec.labels)
        self._note_interval(spec.name, cb, bb)
        bounds = sorted(set(cb) | set(bb))
        first = [cb.get(x, 0.0) for x in bounds]
        second = [bb.get(x, 0.0) for x in bounds]
        mw = mann_whitney_buckets(first, second)
        v.canary_trials, v.baseline_trials = float(mw.n1), float(mw.n2)
        v.canary_value = _median_bound(bounds, first)
        v.baseline_value = _median_bound(bounds, second)
        if mw.n1 < MIN_EVENTS or mw.n2 < MIN_EVENTS or mw.superiority_variance <= 0:
            v.reason = f"{min(mw.n1, mw.n2)} requests on the smaller arm; need {MIN_EVENTS}"
            return
        steps = self._increments[spec.name]
        c = np.array([[inc[0].get(x, 0.0) for x in bounds] for inc in steps])
        b = np.array([[inc[1].get(x, 0.0) for x in bounds] for inc in steps])
        llr, info, harm, variance, deff, intervals, factor = latency_evidence(
            spec, c, b, t.aim, self.clustered, t.sprt_alpha / t.metrics)
        v.relative_change = mw.superiority - 0.5
        v.fixed_z_p = mw.p_greater if spec.direction == HIGHER_IS_BAD else mw.p_less
        v.intervals, v.design_effect, v.variance_factor = intervals, deff, factor
        z = norm.isf(t.sprt_alpha / t.metrics) + norm.isf(1 - DETECT_POWER)
        sd = math.sqrt(mw.superiority_variance * factor)
        v.detectable = z * sd
        factor = (z * sd / spec.min_effect) ** 2
        v.requests_needed = max(0.0, math.ceil(mw.n1 * factor - mw.n1))
        if intervals < MIN_INTERVALS:
            v.reason = (f"{intervals} scrape interval(s) so far; latency decides from "
                        f"{MIN_INTERVALS} (a stalled second is not a slower release)")
            return
        v.llr, v.information = llr, info
        v.reason = (f"collecting evidence (variance x{factor:.3g}: design effect "
                    f"{deff:.3g} x small-sample {factor / deff:.3g})")

    def intervals(self, name: str) -> list[tuple[dict[float, float], dict[float, float]]]:
        """A latency metric's bucket growth per scrape interval so far, (canary, baseline)
        per interval, bucket upper bound → count (what its design effect is made of)."""
        return [(dict(c), dict(b)) for c, b in self._increments[name]]

    def _note_interval(self, name: str, canary: dict[float, float],
                       baseline: dict[float, float]) -> None:
        """Keep the growth of each arm's buckets since the previous look (one scrape interval);
        looks that saw no new request add nothing."""
        before_c, before_b = self._last_buckets.get(name, ({}, {}))
        grow_c = {k: max(0.0, x - before_c.get(k, 0.0)) for k, x in canary.items()}
        grow_b = {k: max(0.0, x - before_b.get(k, 0.0)) for k, x in baseline.items()}
        self._last_buckets[name] = (dict(canary), dict(baseline))
        if sum(grow_c.values()) + sum(grow_b.values()) > 0:
            self._increments[name].append((grow_c, grow_b))


def _upper_bound(events: float, trials: float, alpha: float) -> float:
    """Exact (Clopper-Pearson) one-sided upper confidence bound of a rate."""
    if events >= trials:
        return 1.0
    return float(beta_dist.ppf(1 - alpha, events + 1, trials - events))


def _median_bound(bounds: list[float], counts: list[float]) -> float | None:
    """The bucket upper bound holding the median request (what a histogram can tell)."""
    total = sum(counts)
    if total <= 0:
        return None
    running = 0.0
    for bound, count in zip(bounds, counts):
        running += count
        if running >= total / 2:
            return bound
    return bounds[-1]


def _fmt(value: float | None, pattern: str = "{:.4g}") -> str:
    return "-" if value is None else pattern.format(value)


def render_table(verdict: Verdict) -> str:
    """A plain-text table of the verdict for the deploy log: per metric the status, both
    arms, the evidence and what the traffic so far can and cannot show."""
    head = ("metric", "status", "canary", "baseline", "change", "LLR [pass, fail]",
            "Holm p", "fixed z p", "D²>N / exact", "detectable", "requests needed")
    rows = [head]
    for m in verdict.metrics:
        if m.kind == RATIO:
            canary = f"{m.canary_events:g}/{m.canary_trials:g}"
            baseline = f"{m.baseline_events:g}/{m.baseline_trials:g}"
            change = _fmt(m.relative_change, "{:+.1%}")
            detectable = _fmt(m.detectable, "{:.1%}")
        else:
            canary = f"median<={_fmt(m.canary_value)}s n={m.canary_trials:g}"
            baseline = f"median<={_fmt(m.baseline_value)}s n={m.baseline_trials:g}"
            change = _fmt(m.relative_change, "P(slower)-½={:+.3f}")
            if m.relative_change is not None:
                change += f" ({m.intervals} intervals, variance x{m.variance_factor:.3g})"
            detectable = _fmt(m.detectable, "{:.3f}")
        rows.append((m.name, m.status, canary, baseline, change,
                     f"{m.llr:.2f} [{m.lower:.2f}, {m.upper:.2f}]", f"{m.adjusted_p:.3g}",
                     _fmt(m.fixed_z_p, "{:.3g}"), m.seed_rule or "-", detectable,
                     _fmt(m.requests_needed, "{:.0f}")))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    summary = (f"verdict: {verdict.outcome.upper()} after {verdict.elapsed_s:.1f} s of "
               f"{verdict.max_window_s:g} s — {verdict.reason} (alpha {verdict.alpha:g} over "
               f"{len(verdict.metrics)} metric(s))")
    reasons = [f"  {m.name}: {m.reason}" for m in verdict.metrics]
    return "\n".join([summary, *lines, *reasons]) + "\n"
