"""The canary judge's per-metric tests, vectorised: the same functions decide one look of
``greenlight.deploy.judge.Judge`` and thousands of simulated canaries in bench/judge.py.

Ratios (events per request) run the two-proportion SPRT of ``greenlight.stats.sequential`` plus
an exact breakage fast path; latency runs Mann-Whitney's probability of superiority as a
Gaussian SPRT with its variance inflated by the design effect of the scrape intervals.
``Thresholds`` holds where each test decides, given alpha split over metrics and fast path.
A metric is described by anything with ``min_effect``, ``direction``, ``model`` and
``breakage`` (``greenlight.deploy.metric_spec.MetricSpec``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Protocol

import numpy as np
from greenlight.stats.distributions import beta as beta_dist
from greenlight.stats.distributions import chi2, gamma, norm, student_t

from greenlight.errors import UsageError
from greenlight.stats.ranks import BLOCK, superiority_arrays, superiority_design_effect
from greenlight.stats.sequential import (
    HIGHER_IS_BAD,
    LOWER_IS_BAD,
    always_valid_p_value,
    breakage_zero_rate_p,
    gaussian_llr,
    overshoot,
    rate_ratio_llr,
    sprt_bounds,
    two_proportion_information,
    two_proportion_llr,
)


class TestedMetric(Protocol):
    """What the tests need to know of a metric."""

    min_effect: float
    direction: str  # lower-is-bad | higher-is-bad
    model: str  # binomial | poisson
    breakage: bool  # take part in the breakage fast path


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
BREAKAGE_WITHIN_S = 15.0  # a rate fallen to zero is to be caught this soon (95% of canaries)
# Latency decides only once this many scrape intervals hold requests: a stalled host makes all
# the requests of a second or a few slow together, which only a comparison between intervals
# and blocks of intervals can tell from a slower release (a regression is in every block).
MIN_INTERVALS = 10
# Ratio dispersion: the estimate's excess over binomial is scaled up by (k − 1)/χ²_{k−1}(q),
# an upper confidence bound at this q, so the few intervals of the first seconds do not
# understate it; before DISPERSION_FROM intervals the test counts on the worst case that
# many intervals could hide (the same bound applied to a one-interval excess of 1).
DISPERSION_CONFIDENCE = 0.1
# The breakage path divides by a lower bound (q = 0.9): only the spread the intervals surely
# show, so noise in the estimate does not slow a rare metric's seconds-fast catch.
DISPERSION_FLOOR_CONFIDENCE = 0.9
DISPERSION_FROM = 3


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

    @cached_property
    def horizon(self) -> float:
        """Information at which the test ends: ``horizon_factor`` × that of the fixed-sample
        test at the metric's alpha with 95% power ((aim·(z_α + z_β))² in LLR units)."""
        fixed = (self.aim * (norm.isf(self.sprt_alpha / self.metrics)
                             + norm.isf(1 - DETECT_POWER))) ** 2
        return self.horizon_factor * fixed

    @cached_property
    def upper(self) -> float:  # the first Holm step: p = 1/LR <= sprt_alpha / m
        return math.log(self.metrics / self.sprt_alpha)

    @cached_property
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


def interval_sums(square_sum, intervals, events_step, trials_step):
    """Add one scrape interval's growth to an arm's running sums: (Σ e_i²/n_i, k).
    Intervals without requests add nothing. Vectorised."""
    e, n = np.asarray(events_step, float), np.asarray(trials_step, float)
    live = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(live, e * e / np.where(live, n, 1.0), 0.0)
    return np.asarray(square_sum, float) + term, np.asarray(intervals, float) + live


def dispersion(square_sum, intervals, events, trials, model: str = "binomial",
               confidence: float = DISPERSION_CONFIDENCE):
    """One arm's extra-binomial dispersion φ ≥ 1 from its interval-to-interval spread, as the
    ratio test uses it (vectorised).

    Requests are not independent (users come in sessions, a host's mix of pages drifts), so an
    arm's event count per interval varies more than a binomial's. The quasi-binomial estimate
    is Pearson's χ² over the k intervals: φ̂ = Σ (e_i − n_i·p̂)²/(n_i·p̂(1 − p̂)) / (k − 1),
    from the running sums Σ e_i²/n_i, E and N (Σ (e_i − n_i p̂)²/n_i = Σ e_i²/n_i − E²/N);
    ``model="poisson"``: n_i·r̂ in the denominator. Its excess over 1 is scaled by
    (k − 1)/χ²_{k−1}(``confidence``), an upper bound, so a spread seen over few intervals is
    not taken for less than it may be; never below 1 (binomial). Before ``DISPERSION_FROM``
    intervals there is no estimate and the bound of a one-interval excess of 1 is used.
    ``confidence`` above ½ gives a lower bound instead, max(1, φ̂·(k − 1)/χ²_{k−1}(q)) (1
    before ``DISPERSION_FROM``): the exact breakage tests use it, which a rare metric must
    pass within seconds and whose counts (rare events) a per-interval spread hardly disperses.
    """
    square_sum, k = np.asarray(square_sum, float), np.asarray(intervals, float)
    events, trials = np.asarray(events, float), np.asarray(trials, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(trials > 0, events / np.where(trials > 0, trials, 1.0), 0.0)
        unit = rate if model == "poisson" else rate * (1 - rate)
        pearson = square_sum - events * rate
        df = np.maximum(k - 1, 1.0)
        raw = np.where(unit > 0, pearson / np.where(unit > 0, unit, 1.0) / df, 1.0)
    bound = df / _chi2_quantile(confidence, df)
    if confidence > 0.5:  # lower bound
        phi = np.where(k >= DISPERSION_FROM, np.maximum(raw * bound, 1.0), 1.0)
    else:
        early = 1 + (DISPERSION_FROM - 1) / _chi2_quantile(confidence, DISPERSION_FROM - 1)
        phi = np.where(k >= DISPERSION_FROM, 1 + np.maximum(raw - 1, 0.0) * bound, early)
    phi = np.where(unit > 0, phi, 1.0)
    return phi if phi.ndim else float(phi)


def _chi2_quantile(q: float, df):
    """χ² quantile; a single whole df (the judge's one look) is cached."""
    if np.ndim(df) == 0 and float(df).is_integer():
        return _chi2_quantile_cached(q, int(df))
    return chi2.ppf(q, df)


@lru_cache(maxsize=4096)
def _chi2_quantile_cached(q: float, df: int) -> float:
    return float(chi2.ppf(q, df))


def combined_dispersion(canary_dispersion, canary_trials, baseline_dispersion,
                        baseline_trials):
    """The dispersion of the difference of the two arms' rates: each arm's φ weighted by its
    share of the variance (1/n), so a noisy canary host is not hidden by 19 calm ones."""
    pc, nc = np.asarray(canary_dispersion, float), np.asarray(canary_trials, float)
    pb, nb = np.asarray(baseline_dispersion, float), np.asarray(baseline_trials, float)
    ok = (nc > 0) & (nb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wc = np.where(ok, 1 / np.where(nc > 0, nc, 1.0), 0.5)
        wb = np.where(ok, 1 / np.where(nb > 0, nb, 1.0), 0.5)
    phi = (pc * wc + pb * wb) / (wc + wb)
    return phi if phi.ndim else float(phi)


def ratio_evidence(spec: TestedMetric, canary_events, canary_trials, baseline_events,
                   baseline_trials, aim: float = DEFAULT_AIM, dispersion=1.0,
                   breakage_dispersion=1.0):
    """(LLR of the sequential test, p-value of the breakage fast path) for a ratio metric.

    The SPRT aims at a change of ``aim`` × ``min_effect``. Works on numbers or numpy arrays:
    the judge calls it once per scrape, bench/judge.py on thousands of simulated canaries at
    once, so both run the same test. ``dispersion`` (φ ≥ 1, :func:`combined_dispersion`) is
    the quasi-likelihood scale: the LLR and its information are divided by it; the exact
    breakage tests divide by ``breakage_dispersion`` (the point estimate) in the same way,
    counting b/φ events, as many as independent ones would carry.
    """
    a, n_c = np.asarray(canary_events, float), np.asarray(canary_trials, float)
    b, n_b = np.asarray(baseline_events, float), np.asarray(baseline_trials, float)
    phi = np.maximum(np.asarray(dispersion, float), 1.0)
    llr = two_proportion_llr(a, n_c, b, n_b, spec.min_effect * aim, spec.direction,
                             spec.model) / phi
    breakage_p = np.ones_like(np.asarray(llr, float))
    phi = np.maximum(np.asarray(breakage_dispersion, float), 1.0)
    if spec.breakage:
        if spec.direction == LOWER_IS_BAD:
            breakage_p = breakage_zero_rate_p(a, n_c, b / phi, n_b)
        else:
            # errors up five-fold: exact conditional binomial SPRT, read as always-valid p.
            trials = n_c + n_b
            pooled = np.where(trials > 0, (a + b) / np.where(trials > 0, trials, 1), 0.0)
            fold = rate_ratio_llr(a, n_c, b, n_b, BREAKAGE_RATIO) / phi
            breakage_p = np.where(pooled <= 0.5, always_valid_p_value(fold), 1.0)
    if np.ndim(llr) == 0:
        return float(llr), float(breakage_p)
    return llr, breakage_p


def ratio_information(spec: TestedMetric, canary_events, canary_trials, baseline_events,
                      baseline_trials, aim: float = DEFAULT_AIM, dispersion=1.0):
    """The information of the ratio's LLR so far (its variance under "no change", divided by
    the dispersion); its growth from one look to the next sizes Siegmund's overshoot."""
    info = two_proportion_information(canary_events, canary_trials, baseline_events,
                                      baseline_trials, spec.min_effect * aim, spec.direction,
                                      spec.model)
    return info / np.maximum(np.asarray(dispersion, float), 1.0)


def ratio_look(spec: TestedMetric, t: Thresholds, canary_events, canary_trials,
               baseline_events, baseline_trials, previous_information=0.0, dispersion=1.0,
               breakage_dispersion=1.0):
    """What the judge decides at one look when this metric is the only one watched:
    ``(fail, pass, information)``, vectorised. ``previous_information`` is the value this
    returned at the previous look (0 at the first); ``dispersion`` as in
    :func:`ratio_evidence`. ``Judge.observe`` applies the same lines (with Holm over several
    metrics); bench/judge.py and the tests run this on thousands of simulated canaries at once.
    """
    llr, breakage_p = ratio_evidence(spec, canary_events, canary_trials, baseline_events,
                                     baseline_trials, t.aim, dispersion, breakage_dispersion)
    info = ratio_information(spec, canary_events, canary_trials, baseline_events,
                             baseline_trials, t.aim, dispersion)
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


def latency_evidence(spec: TestedMetric, canary_intervals, baseline_intervals,
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


def latency_look(spec: TestedMetric, t: Thresholds, canary_intervals, baseline_intervals,
                 previous_information=0.0, clustered: bool = True):
    """``(fail, pass, information)`` of a latency metric watched alone, vectorised: what
    ``Judge.observe`` decides at this look (bench/judge.py's stall rows)."""
    llr, info, *_ = latency_evidence(spec, canary_intervals, baseline_intervals, t.aim,
                                     clustered, t.sprt_alpha / t.metrics)
    fail, passed = t.decide(llr, info, previous_information, closing=False)
    return fail, passed, info


def rate_upper_bound(events: float, trials: float, alpha: float) -> float:
    """Exact (Clopper-Pearson) one-sided upper confidence bound of a rate."""
    if events >= trials:
        return 1.0
    return float(beta_dist.ppf(1 - alpha, events + 1, trials - events))


def shift_detectable(variance, alpha: float, power: float = DETECT_POWER):
    """The smallest shift a one-sided test at ``alpha`` sees with ``power`` when its estimate
    has this ``variance``: (z_α + z_β)·σ."""
    z = norm.isf(alpha) + norm.isf(1 - power)
    return z * np.sqrt(np.asarray(variance, float))


def breakage_rate_needed(base_rate: float, baseline_per_canary: float, breakage_alpha: float,
                         dispersion: float = 1.0, within_s: float = BREAKAGE_WITHIN_S,
                         power: float = DETECT_POWER, look_s: float = 1.0) -> float:
    """Requests/s the canary arm must serve for the breakage path to catch its rate fallen to
    zero within ``within_s`` seconds of its first request in ``power`` of canaries, read
    every ``look_s`` (the last look in time may hold only ``within_s − look_s`` of traffic).

    With no canary event the exact test's p-value is share_b^(b/φ) after b baseline events
    (share_b = n_b/(n_c + n_b)), so it needs b* = ⌈φ·ln α / ln share_b⌉ of them; the baseline's
    events in ``within_s`` are Poisson, P(Poisson(λ) ≥ b*) = P(Gamma(b*) ≤ λ), so λ* is the
    Gamma's ``power`` quantile, and the canary's rate is λ*/(within_s · p · k). At p = 0.02
    one canary against one baseline host: 9 events, about 51 requests/s.
    """
    if not 0 < base_rate <= 1 or not baseline_per_canary > 0:
        raise UsageError(f"base_rate must be in (0, 1] and baseline_per_canary > 0 (got "
                         f"{base_rate}, {baseline_per_canary})")
    share_b = baseline_per_canary / (1 + baseline_per_canary)
    events = math.ceil(max(dispersion, 1.0) * math.log(breakage_alpha) / math.log(share_b))
    expected = _gamma_quantile(power, events)
    return expected / ((within_s - look_s) * base_rate * baseline_per_canary)


def ratio_window_s(spec: TestedMetric, t: Thresholds, base_rate: float, canary_rps: float,
                   baseline_rps: float, dispersion: float = 1.0) -> float:
    """Seconds of traffic (requests/s per arm) until the ratio's sequential test has closed
    on a healthy canary: its horizon information over the information one second brings.
    The longest a window for this metric lasts; decisions mostly come at a half or less."""
    if not (0 < base_rate and canary_rps > 0 and baseline_rps > 0):
        return math.inf
    if spec.model == "binomial" and base_rate >= 1:
        return math.inf
    per_second = two_proportion_information(
        base_rate * canary_rps, canary_rps, base_rate * baseline_rps, baseline_rps,
        spec.min_effect * t.aim, spec.direction, spec.model, min_events=0) / max(dispersion, 1)
    if not per_second > 0:
        return math.inf
    return float(t.horizon_at(per_second)) / per_second


@lru_cache(maxsize=1024)
def _gamma_quantile(q: float, shape: int) -> float:
    return float(gamma.ppf(q, shape))
