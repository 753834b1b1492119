"""The canary judge: compares canary hosts with baseline hosts over the same window, metric by
metric, and says fail / pass / pending after every scrape.

Pure: it takes request counts (totals since the window started, per series) and returns a
verdict; scraping lives in ``greenlight.deploy.metrics``, the metric settings in
``greenlight.deploy.metric_spec``, the tests in ``greenlight.stats.canary`` and the text table
in ``greenlight.deploy.judge_render``. This module keeps the state between looks: it is read at
every scrape, so each metric runs a sequential test (Wald's SPRT) whose false-alarm rate holds
under continuous monitoring, and the family of metrics is held at ``alpha`` with Holm over
always-valid p-values. A share of alpha (``breakage_share``) goes to the breakage fast path: an
exact binomial test that catches a rate falling to zero, or errors up five-fold, within
seconds. See docs/judge.md for the settings and what the judge can see at a given traffic.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from greenlight.deploy.judge_render import render_table
from greenlight.deploy.metric_spec import (
    DEFAULT_SPECS,
    LATENCY,
    RATIO,
    MetricSpec,
    Totals,
    amount_unit,
    histogram_buckets,
    ratio_counts,
)
from greenlight.errors import SettingsError, UsageError
from greenlight.stats import (
    binomial_rate_test,
    detectable_relative_change,
    holm_adjust,
    sample_size_per_arm,
    seed_rule_on_rarer_outcome,
    two_proportion_test,
)
from greenlight.stats.canary import (
    DEFAULT_AIM,
    DEFAULT_BETA,
    DEFAULT_BREAKAGE_SHARE,
    DETECT_POWER,
    DISPERSION_CONFIDENCE,
    DISPERSION_FLOOR_CONFIDENCE,
    MIN_INTERVALS,
    Thresholds,
    breakage_rate_needed,
    ratio_window_s,
    combined_dispersion,
    dispersion,
    interval_sums,
    latency_evidence,
    ratio_evidence,
    ratio_information,
    rate_upper_bound,
    shift_detectable,
)
from greenlight.stats.ranks import mann_whitney_buckets
from greenlight.stats.sequential import (
    HIGHER_IS_BAD,
    LOWER_IS_BAD,
    MIN_EVENTS,
    always_valid_p_value,
    sprt_bounds,
)

OUTCOMES = ("fail", "pass", "pending")


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
    # ratio: extra-binomial dispersion φ (>= 1) of each arm's counts between scrape intervals,
    # and of their difference as the sequential test divides by it
    canary_dispersion: float = 1.0
    baseline_dispersion: float = 1.0
    dispersion: float = 1.0
    # the window: has the traffic so far shown min_effect (see Judge), and when it will have
    # at the rates so far (seconds from the canary's first request)
    seen_enough: bool = False
    expected_s: float | None = None
    # ratio, lower-is-bad: requests/s per canary host the breakage path needs to catch a rate
    # fallen to zero within BREAKAGE_WITHIN_S in 95% of canaries, at this base rate and split
    breakage_rate_needed: float | None = None

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
    # the window ended with no evidence of harm before every metric was decided
    undecided: bool = False
    serving_s: float | None = None  # seconds since the canary's first served request

    @property
    def failing(self) -> list[MetricVerdict]:
        return [m for m in self.metrics if m.status == "fail"]

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "reason": self.reason, "elapsed_s": self.elapsed_s,
                "alpha": self.alpha, "max_window_s": self.max_window_s,
                "undecided": self.undecided, "serving_s": self.serving_s,
                "metrics": [m.as_dict() for m in self.metrics]}

    def to_json(self) -> str:
        return json.dumps(_finite(self.as_dict()), sort_keys=True)

    @property
    def table(self) -> str:
        return render_table(self)


@dataclass(frozen=True)
class Forecast:
    """What the traffic before a deploy says about one ratio metric's window."""

    name: str
    direction: str
    min_effect: float
    base_rate: float  # events per request
    requests_per_s: float  # per host
    fixed_s: float  # a fixed-sample test's time at the metric's alpha and 95% power
    window_s: float  # until the test has closed on a healthy canary (inf: no traffic)
    expected_s: float  # the same, capped at the judge's hard maximum

    def as_dict(self) -> dict:
        return _finite(asdict(self))


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

    The window follows the traffic: it counts from the canary's first served request (the
    baseline's counts before it are set aside) and lasts until every metric is decided or
    has seen enough traffic to show its ``min_effect`` (a ratio's sequential test closes by
    then; a latency metric whose smallest detectable shift reached ``min_effect``), or until
    ``max_window_s``. A window that ends so with no evidence of harm is *undecided*: it
    passes as "no harm detected down to X" (``on_timeout="fail"``: it fails).
    """

    def __init__(self, specs: Iterable[MetricSpec] | None = None, alpha: float = 0.01,
                 max_window_s: float = 900.0, on_timeout: str = "pass", beta: float = DEFAULT_BETA,
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
        self._information_before = dict(self._information)
        # ratios: each arm's totals at the previous look and its running interval sums
        # (Σ e²/n, intervals) for the dispersion estimate
        self._ratio_seen: dict[str, np.ndarray] = {}
        self._ratio_sums = {s.name: np.zeros(4) for s in self.specs if s.kind == RATIO}
        self._decided: dict[str, tuple[str, str, float]] = {}
        self._started: float | None = None
        # until the canary serves: the baseline totals and the time at the last look, the
        # zero point of the window the tests see
        self._baseline_zero: dict = {}
        self._serving_from: float | None = None
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
        if self._serving_from is None:
            if not any(value > 0 for value in canary.values()):
                self._baseline_zero = dict(baseline)
                verdicts = [MetricVerdict(spec.name, spec.kind, spec.direction,
                                          reason="the canary has served no request yet",
                                          min_effect=spec.min_effect) for spec in self.specs]
                outcome, reason, _ = self._overall(verdicts, elapsed_s, None)
                return Verdict(outcome, reason, float(elapsed_s), verdicts, self.alpha,
                               self.max_window_s)
            self._serving_from = float(elapsed_s) if self._baseline_zero else 0.0
        if self._baseline_zero:
            zero = self._baseline_zero
            baseline = {k: max(0.0, v - zero.get(k, 0.0)) for k, v in baseline.items()}
        serving_s = float(elapsed_s) - self._serving_from
        verdicts = [self._judge_metric(spec, canary, baseline) for spec in self.specs]
        for v in verdicts:
            self._window_progress(v, serving_s)
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
                      and rate_upper_bound(v.canary_events, v.canary_trials, t.sprt_alpha)
                      < spec.floor):
                    decision = ("pass", f"canary rate surely below the floor {spec.floor:g}")
                if decision:
                    self._decided[spec.name] = (*decision, elapsed_s)
            if spec.name in self._decided:
                v.status, v.reason, v.decided_at_s = self._decided[spec.name]
        outcome, reason, undecided = self._overall(verdicts, elapsed_s, serving_s)
        return Verdict(outcome, reason, float(elapsed_s), verdicts, self.alpha,
                       self.max_window_s, undecided=undecided, serving_s=serving_s)

    def _overall(self, verdicts: list[MetricVerdict], elapsed_s: float,
                 serving_s: float | None) -> tuple[str, str, bool]:
        """(outcome, reason, whether the window ended undecided)."""
        failing = [v.name for v in verdicts if v.status == "fail"]
        if failing:
            return "fail", "failing: " + ", ".join(failing), False
        if all(v.status == "pass" for v in verdicts):
            return "pass", "all metrics pass", False
        pending = [v for v in verdicts if v.status == "pending"]
        over = elapsed_s >= self.max_window_s
        if over and serving_s is None:  # no data is not a pass
            return "fail", (f"the canary served no request in the window of "
                            f"{self.max_window_s:g} s"), False
        if over or (serving_s is not None and all(v.seen_enough for v in pending)):
            why = (f"window of {self.max_window_s:g} s over" if over
                   else "the traffic so far shows each metric's min_effect")
            return self.on_timeout, (
                "undecided: no harm detected down to "
                + ", ".join(f"{v.name} {_effect_text(v)}" for v in pending)
                + f" ({why}; on_window_end = {self.on_timeout})"), True
        if serving_s is None:
            return "pending", "the canary has served no request yet", False
        return "pending", "waiting for enough requests", False

    def forecast(self, baseline: Totals, seconds: float, hosts: int, canary_hosts: int = 1,
                 baseline_hosts: int | None = None) -> list[Forecast]:
        """Before the deploy: how long each ratio metric's window will last at the traffic
        ``hosts`` hosts served in ``seconds`` (``baseline`` = their counter growth), with
        ``canary_hosts`` canaries against ``baseline_hosts`` (default: the rest)."""
        per_host = max(hosts, 1)
        rest = baseline_hosts if baseline_hosts is not None else max(hosts - canary_hosts, 1)
        out = []
        for spec in self.specs:
            if spec.kind != RATIO:
                continue
            events, requests = ratio_counts(spec, baseline, amount_unit(spec, baseline, {}))
            rps = requests / seconds / per_host if seconds > 0 else 0.0
            rate = events / requests if requests > 0 else 0.0
            window = ratio_window_s(spec, self.thresholds, rate, rps * canary_hosts,
                                    rps * rest)
            out.append(Forecast(spec.name, spec.direction, spec.min_effect, rate, rps,
                                window / self.thresholds.horizon_factor, window,
                                min(window, self.max_window_s)))
        return out

    def _window_progress(self, v: MetricVerdict, serving_s: float) -> None:
        """Whether this metric's window has seen enough traffic, and when it will have at
        the rates so far (seconds from the canary's first request)."""
        t = self.thresholds
        if v.kind == RATIO:
            # the sequential test closes at its horizon: decided by then
            horizon = float(t.horizon_at(v.information - self._information_before[v.name]))
            v.seen_enough = v.information >= horizon
            if v.information > 0 and serving_s > 0:
                v.expected_s = serving_s * horizon / v.information
        elif v.detectable is not None and v.intervals >= MIN_INTERVALS:
            v.seen_enough = v.detectable <= v.min_effect
            if serving_s > 0:
                v.expected_s = serving_s * (v.detectable / v.min_effect) ** 2

    def _judge_metric(self, spec: MetricSpec, canary: Totals, baseline: Totals) -> MetricVerdict:
        t = self.thresholds
        v = MetricVerdict(spec.name, spec.kind, spec.direction, min_effect=spec.min_effect)
        if spec.kind == RATIO:
            self._ratio(spec, canary, baseline, v)
        else:
            self._latency(spec, canary, baseline, v)
        previous = self._information[spec.name]
        self._information_before[spec.name] = previous
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
        phi, phi_floor = self._dispersion(spec, a, n_c, b, n_b, v)
        v.llr, v.breakage_p = ratio_evidence(spec, a, n_c, b, n_b, t.aim, phi, phi_floor)
        v.information = float(ratio_information(spec, a, n_c, b, n_b, t.aim, phi))
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
        if spec.breakage and spec.direction == LOWER_IS_BAD and n_b > 0 and 0 < b <= n_b:
            v.breakage_rate_needed = breakage_rate_needed(
                min(b / n_b, 1.0), n_b / n_c, t.breakage_alpha, phi_floor)
        pooled = (a + b) / (n_c + n_b)
        alpha_m = t.sprt_alpha / t.metrics
        if spec.model == "binomial" and 0 < pooled < 1:
            # equal-arm size with the same variance, dispersion included
            n_eff = 2 / (1 / n_c + 1 / n_b) / phi
            v.detectable = detectable_relative_change(pooled, n_eff, alpha_m, DETECT_POWER)
            change = spec.min_effect if spec.direction == LOWER_IS_BAD else -spec.min_effect
            try:
                n95 = sample_size_per_arm(pooled, change, alpha_m, DETECT_POWER)
            except UsageError:
                n95 = None
            if n95 is not None:
                k = n_b / n_c
                v.requests_needed = max(0.0, math.ceil(n95 * phi * (1 + 1 / k) / 2 - n_c))

    def _dispersion(self, spec: MetricSpec, a: float, n_c: float, b: float, n_b: float,
                    v: MetricVerdict) -> tuple[float, float]:
        """Note this look's interval in the arms' running sums; return the dispersion the
        sequential test uses (upper bound) and the breakage path's (lower bound)."""
        now = np.array([a, n_c, b, n_b], float)
        grow = np.clip(now - self._ratio_seen.get(spec.name, np.zeros(4)), 0.0, None)
        self._ratio_seen[spec.name] = now
        sums = self._ratio_sums[spec.name]
        sums[0], sums[1] = interval_sums(sums[0], sums[1], grow[0], grow[1])
        sums[2], sums[3] = interval_sums(sums[2], sums[3], grow[2], grow[3])
        phis = []
        for confidence in (DISPERSION_CONFIDENCE, DISPERSION_FLOOR_CONFIDENCE):
            canary = dispersion(sums[0], sums[1], a, n_c, spec.model, confidence)
            base = dispersion(sums[2], sums[3], b, n_b, spec.model, confidence)
            if confidence == DISPERSION_CONFIDENCE:
                v.canary_dispersion, v.baseline_dispersion = float(canary), float(base)
            phis.append(float(combined_dispersion(canary, n_c, base, n_b)))
        v.dispersion = phis[0]
        return phis[0], phis[1]

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
        v.detectable = float(shift_detectable(mw.superiority_variance * factor,
                                              t.sprt_alpha / t.metrics, DETECT_POWER))
        # the sample grows by (detectable / min_effect)² to bring min_effect into view
        multiplier = (v.detectable / spec.min_effect) ** 2
        v.requests_needed = max(0.0, math.ceil(mw.n1 * multiplier - mw.n1))
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


def _effect_text(v: MetricVerdict) -> str:
    """The smallest change this metric's traffic can show now: relative for a ratio, a shift
    of P(canary slower) for latency."""
    if v.detectable is None:
        return "(no traffic yet)"
    if v.kind == RATIO:
        return f"{v.detectable:.0%}"
    return f"P(slower) {0.5 + v.detectable:.3f}"


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
