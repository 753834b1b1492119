"""Trending: business and system metrics over time with every deploy on them.

IMVU watched trending graphs where "production issues correlate with check-in timestamps":
this module gives the numbers (Prometheus range queries over the hosts' metrics) and the
marks (every deploy, rollback and incident of the ledger in the range, with its commits'
subjects). Without a Prometheus server it gives the marks alone; a Prometheus that does not
answer is reported, never shown as an empty chart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import requests

RANGES = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400}
POINTS = 240  # per series: enough for a 1280-px chart, small enough for a phone


@dataclass(frozen=True)
class Query:
    """One trending chart: a PromQL expression over the demo app's metrics (``{w}`` is the
    rate window, chosen from the range). A counter nobody has counted yet (no error so far)
    has no series at all: ``or vector(0)`` makes it a zero rate, not a missing chart."""
    name: str
    group: str  # business | system
    promql: str
    unit: str  # share | rate | seconds


PER_REQUEST = "(sum(rate({counter}[{{w}}])) or vector(0)) / sum(rate(demo_requests_total[{{w}}]))"
QUERIES = (
    Query("logins per request", "business", PER_REQUEST.format(counter="demo_logins_total"),
          "share"),
    Query("registrations per request", "business",
          PER_REQUEST.format(counter="demo_registrations_total"), "share"),
    Query("revenue per request", "business", PER_REQUEST.format(counter="demo_revenue_total"),
          "rate"),
    Query("error rate", "system", PER_REQUEST.format(counter="demo_errors_total"), "share"),
    Query("latency p50", "system", "histogram_quantile(0.5, sum by (le) "
          "(rate(demo_request_duration_seconds_bucket[{w}])))", "seconds"),
    Query("latency p95", "system", "histogram_quantile(0.95, sum by (le) "
          "(rate(demo_request_duration_seconds_bucket[{w}])))", "seconds"),
    Query("requests per second", "system", "sum(rate(demo_requests_total[{w}]))", "rate"),
)


@dataclass
class Mark:
    """A deploy, rollback or incident at ``at`` (epoch seconds) on the trending charts."""
    at: float
    kind: str  # deploy | rollback | failed | incident
    label: str
    deploy_id: int | None
    title: str  # the hover text: what it was and the commits' subjects
    subjects: list[str] = field(default_factory=list)


@dataclass
class Trend:
    """One query's points, or why there are none."""
    query: Query
    points: list[tuple[float, float]]
    error: str = ""


def window(range_name: str, now: float) -> tuple[float, float, float]:
    """(start, end, step) of a named range ending ``now``."""
    seconds = RANGES[range_name]
    return now - seconds, now, max(seconds / POINTS, 1.0)


def rate_window(range_name: str) -> str:
    return {"1h": "1m", "24h": "5m", "7d": "30m"}[range_name]


def mark_kind(record: Any) -> str:
    if record.kind == "rollback" or record.outcome == "rolled_back":
        return "rollback"
    if record.outcome in ("failed", "aborted", "interrupted"):
        return "failed"
    return "deploy"


def marks(ledger: Any, start: float, end: float,
          subjects_of: Callable[[Iterable[str]], dict[str, str]]) -> list[Mark]:
    """Every deploy (at its start) and incident request (when opened) of the ledger in
    [start, end], oldest first; ``subjects_of`` names the commits (sha -> subject)."""
    out = []
    records = ledger.deploys_between(start, end)
    subjects = subjects_of({sha for r in records for sha in r.commits})
    for record in records:
        at = record.started_at.timestamp()
        if not start <= at <= end:
            continue
        kind = mark_kind(record)
        lines = [subjects.get(sha, sha[:12]) for sha in record.commits]
        title = (f"#{record.id} {record.kind} {record.outcome}: {record.sha[:12]}"
                 + ("".join(f"\n• {line}" for line in lines[:20]))
                 + (f"\n… and {len(lines) - 20} more" if len(lines) > 20 else ""))
        out.append(Mark(at, kind, f"#{record.id}", record.id, title, lines))
    for incident in ledger.incidents():
        at = incident.opened_at.timestamp()
        if start <= at <= end:
            out.append(Mark(at, "incident", f"incident {incident.id}", incident.deploy_id,
                            f"incident request {incident.id}: {incident.summary}"))
    return sorted(out, key=lambda m: m.at)


def query_range(prometheus_url: str, promql: str, start: float, end: float, step: float,
                timeout: float = 10.0) -> list[tuple[float, float]]:
    """One Prometheus range query summed into a single series of (epoch s, value); NaN
    samples (no requests in the window) are left out. Raises TrendError when the server
    does not answer or refuses the query."""
    try:
        response = requests.get(f"{prometheus_url.rstrip('/')}/api/v1/query_range",
                                params={"query": promql, "start": start, "end": end,
                                        "step": step}, timeout=timeout)
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TrendError(f"Prometheus at {prometheus_url} did not answer: {exc}") from None
    if body.get("status") != "success":
        raise TrendError(f"Prometheus refused {promql!r}: {body.get('error', body)}")
    result = body.get("data", {}).get("result", [])
    if not result:
        return []
    points = []
    for t, value in result[0].get("values", []):
        v = float(value)
        if v == v and v not in (float("inf"), float("-inf")):
            points.append((float(t), v))
    return points


class TrendError(Exception):
    """Prometheus could not give a series (the page says so in place of the chart)."""


def trends(prometheus_url: str, range_name: str, now: float,
           queries: Iterable[Query] = QUERIES) -> list[Trend]:
    """Each query over the range; an empty list without a Prometheus server."""
    if not prometheus_url:
        return []
    start, end, step = window(range_name, now)
    out = []
    for query in queries:
        promql = query.promql.replace("{w}", rate_window(range_name))
        try:
            out.append(Trend(query, query_range(prometheus_url, promql, start, end, step)))
        except TrendError as exc:
            out.append(Trend(query, [], str(exc)))
    return out


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
