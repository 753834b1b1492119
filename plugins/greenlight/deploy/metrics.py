"""Where the judge's numbers come from: each host's Prometheus ``/metrics`` page scraped
directly (default, no server needed), or a Prometheus server's HTTP API when the settings name
one. Both give the same thing: per host, how much each counter grew since the window started.

Counters only ever grow, except when a host restarts and they start again from zero. A delta
that goes negative (or a series whose ``_created`` time changed) is a reset: the growth since
the restart is the new value itself, so a restarted host never looks like a drop. Parsing and
delta arithmetic are pure functions; the two classes at the bottom do the HTTP (``requests``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from greenlight.deploy.metric_spec import LATENCY, MetricSpec, SeriesKey, Totals, series_key
from greenlight.errors import GreenlightError, UsageError

# Sample types whose values are monotone counters (histogram buckets and counts included).
_COUNTING_TYPES = {"counter", "histogram", "summary", "gaugehistogram"}
_COUNTING_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


class MetricsError(GreenlightError):
    """A host's metrics could not be read or parsed: the message names the URL."""


@dataclass
class Snapshot:
    """One scrape of one host: counter values, and when each counter was created (if the
    exporter says), which tells a restart even when the new value already passed the old."""

    values: dict[SeriesKey, float] = field(default_factory=dict)
    created: dict[SeriesKey, float] = field(default_factory=dict)


def parse_metrics(text: str, where: str = "metrics") -> Snapshot:
    """Parse Prometheus text exposition into counter-like series (gauges are skipped: a
    difference of gauges means nothing)."""
    snapshot = Snapshot()
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsError(f"{where}: not Prometheus text format ({exc}); check that the URL "
                           "is the host's /metrics endpoint") from None
    for family in families:
        if family.type not in _COUNTING_TYPES and family.type != "unknown":
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                base = sample.name[: -len("_created")]
                snapshot.created[series_key(base, sample.labels)] = float(sample.value)
                continue
            if family.type == "unknown" and not sample.name.endswith(_COUNTING_SUFFIXES):
                continue
            if math.isnan(sample.value):
                continue
            snapshot.values[series_key(sample.name, sample.labels)] = float(sample.value)
    return snapshot


def _created_key(key: SeriesKey) -> SeriesKey:
    """The ``_created`` series that belongs to a sample (counters: name minus ``_total``;
    histograms: name minus ``_bucket``/``_count``/``_sum`` and without the ``le`` label)."""
    name, labels = key
    for suffix in _COUNTING_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name, tuple((k, v) for k, v in labels if k not in ("le", "quantile"))


def counter_deltas(previous: Snapshot | None, current: Snapshot) -> dict[SeriesKey, float]:
    """Growth of every counter between two scrapes of one host, resets handled.

    No previous scrape: everything is 0 (the window starts here). A series new since the
    previous scrape grew by its whole value. A value below the previous one, or a changed
    ``_created`` time, is a restart: the growth is the current value.
    """
    if previous is None:
        return {key: 0.0 for key in current.values}
    deltas = {}
    for key, value in current.values.items():
        before = previous.values.get(key)
        if before is None:
            deltas[key] = value
            continue
        ckey = _created_key(key)
        restarted = (ckey in current.created and ckey in previous.created
                     and current.created[ckey] != previous.created[ckey])
        deltas[key] = value if (restarted or value < before) else value - before
    return deltas


def series_deltas(values: Iterable[float]) -> float:
    """Total growth of one counter over successive readings, resets handled (the
    Prometheus-API path gets a series of raw values per window)."""
    total, before = 0.0, None
    for value in values:
        if before is not None:
            total += value if value < before else value - before
        before = value
    return total


def sum_hosts(per_host: Mapping[str, Mapping[SeriesKey, float]], hosts: Iterable[str]) -> Totals:
    """One arm's totals: the hosts' totals added series by series."""
    out: dict[SeriesKey, float] = {}
    for host in hosts:
        for key, value in per_host.get(host, {}).items():
            out[key] = out.get(key, 0.0) + value
    return out


def needed_names(specs: Iterable[MetricSpec]) -> list[str]:
    """The sample names the judge reads for these metrics (what to ask Prometheus for)."""
    names: list[str] = []
    for spec in specs:
        wanted = [f"{spec.histogram}_bucket"] if spec.kind == LATENCY else [
            spec.numerator, spec.denominator, *([spec.squares] if spec.squares else [])]
        names.extend(n for n in wanted if n not in names)
    return names


class DirectSource:
    """Scrape each host's /metrics (the default: no Prometheus server needed).

    ``start()`` takes the zero point of the window; each ``totals()`` scrapes again and
    returns per host the growth since then. A host that does not answer keeps its totals;
    the next good scrape covers the gap.
    """

    def __init__(self, urls: Mapping[str, str], timeout: float = 2.0,
                 session: requests.Session | None = None):
        self.urls = dict(urls)
        self.timeout = timeout
        self.session = session or requests.Session()
        self._last: dict[str, Snapshot] = {}
        self._totals: dict[str, dict[SeriesKey, float]] = {h: {} for h in self.urls}
        self.errors: dict[str, str] = {}

    def scrape(self, host: str) -> Snapshot:
        url = self.urls[host]
        try:
            response = self.session.get(url, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise MetricsError(f"host {host}: cannot read {url}: {exc}") from None
        return parse_metrics(response.text, where=f"host {host} ({url})")

    def start(self) -> None:
        self._last.clear()
        self._totals = {h: {} for h in self.urls}
        self._poll()

    def totals(self) -> dict[str, dict[SeriesKey, float]]:
        self._poll()
        return {h: dict(t) for h, t in self._totals.items()}

    def _poll(self) -> None:
        for host in self.urls:
            try:
                snapshot = self.scrape(host)
            except MetricsError as exc:
                self.errors[host] = str(exc)
                continue
            self.errors.pop(host, None)
            totals = self._totals[host]
            for key, delta in counter_deltas(self._last.get(host), snapshot).items():
                totals[key] = totals.get(key, 0.0) + delta
            self._last[host] = snapshot


class PrometheusSource:
    """Ask a Prometheus server (``/api/v1/query`` with a range selector) for the raw counter
    samples of each host since the window started, and add up their growth with resets
    handled, exactly as the direct path does (no ``increase()`` extrapolation: request counts
    stay whole numbers).

    ``instances`` maps each host to its ``instance`` label (by default host:port of its
    metrics URL, which is what a static scrape config gives).
    """

    def __init__(self, base_url: str, instances: Mapping[str, str], names: Iterable[str],
                 timeout: float = 5.0, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"prometheus_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.instances = dict(instances)
        self.names = list(names)
        if not self.names:
            raise UsageError("PrometheusSource needs at least one metric name")
        self.timeout, self.clock = timeout, clock
        self.session = session or requests.Session()
        self._start: float | None = None

    def start(self) -> None:
        self._start = self.clock()

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """Run an instant query; returns the ``result`` list. Errors name the server."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.base_url}/api/v1/query"
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise MetricsError(f"Prometheus at {self.base_url}: {exc}") from None
        if body.get("status") != "success":
            raise MetricsError(f"Prometheus at {self.base_url} refused {promql!r}: "
                               f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def totals(self) -> dict[str, dict[SeriesKey, float]]:
        if self._start is None:
            self.start()
        now = self.clock()
        seconds = max(1, math.ceil(now - self._start))
        by_instance = {inst: host for host, inst in self.instances.items()}
        names = "|".join(_regex_escape(n) for n in self.names)
        insts = "|".join(_regex_escape(i) for i in by_instance)
        promql = f'{{__name__=~"{names}",instance=~"{insts}"}}[{seconds}s]'
        out: dict[str, dict[SeriesKey, float]] = {h: {} for h in self.instances}
        for series in self.query(promql, at=now):
            labels = dict(series["metric"])
            name = labels.pop("__name__", "")
            host = by_instance.get(labels.pop("instance", ""))
            labels.pop("job", None)
            if host is None:
                continue
            values = [float(v) for ts, v in series.get("values", [])
                      if float(ts) >= self._start - 1e-6]
            key = series_key(name, labels)
            out[host][key] = out[host].get(key, 0.0) + series_deltas(values)
        return out


def _regex_escape(text: str) -> str:
    """Escape for a PromQL regex inside a double-quoted string (RE2 metacharacters)."""
    special = set(r".^$*+?()[]{}|\-")
    escaped = "".join("\\\\" + c if c in special else c for c in text)
    return escaped.replace('"', '\\"')


def default_instance(metrics_url: str) -> str:
    """host:port of a metrics URL: the ``instance`` label Prometheus gives that target."""
    parts = urlsplit(metrics_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


class CanaryWatch:
    """The two arms of a canary window over one metrics source: ``read()`` returns
    (canary totals, baseline totals) since ``start()``, ready for ``Judge.observe``."""

    def __init__(self, source: DirectSource | PrometheusSource, canary: Iterable[str],
                 baseline: Iterable[str]):
        self.source = source
        self.canary, self.baseline = list(canary), list(baseline)
        overlap = set(self.canary) & set(self.baseline)
        if overlap:
            raise UsageError(f"hosts {sorted(overlap)} cannot be canary and baseline at once")
        if not self.canary or not self.baseline:
            raise UsageError("a canary window needs at least one canary and one baseline host")

    def start(self) -> None:
        self.source.start()

    def read(self) -> tuple[Totals, Totals]:
        per_host = self.source.totals()
        return sum_hosts(per_host, self.canary), sum_hosts(per_host, self.baseline)


def source_from_settings(judge_table: Mapping, metrics_urls: Mapping[str, str],
                         specs: Iterable[MetricSpec],
                         instances: Mapping[str, str] | None = None
                         ) -> DirectSource | PrometheusSource:
    """Direct scraping unless the judge settings name ``prometheus_url``."""
    url = (judge_table or {}).get("prometheus_url", "")
    timeout = float((judge_table or {}).get("scrape_timeout_s", 2.0))
    if url:
        inst = dict(instances or {h: default_instance(u) for h, u in metrics_urls.items()})
        return PrometheusSource(url, inst, needed_names(specs), timeout=max(timeout, 5.0))
    return DirectSource(metrics_urls, timeout=timeout)
