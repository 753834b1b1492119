"""What one deploy's ledger record tells: the verdict in a sentence, how far it got, what
shipped, which hosts were down, why a host did not start, the judge's looks and each host's
timeline.

Pure functions of a ``DeployRecord`` (with its events): the deploy page, ``greenlight deploys
show`` and the deploy step's text all read a deploy through here, so they say the same thing.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# "ModuleNotFoundError: No module named 'x'", "OSError: [Errno 98] Address already in use"
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt))"
                            r"(?::\s*(.*))?$")
TRACEBACK_START = "Traceback (most recent call last):"


def exception_line(log: str) -> str | None:
    """The last exception line of a log (what a crashed Python program printed last)."""
    for line in reversed(log.splitlines()):
        match = EXCEPTION_LINE.match(line.strip())
        if match:
            return line.strip()
    return None


def last_traceback(log: str) -> str | None:
    """The last Python traceback in a log, through its exception line."""
    at = log.rfind(TRACEBACK_START)
    if at < 0:
        return None
    block = log[at:].splitlines()
    for end, line in enumerate(block):
        if end and EXCEPTION_LINE.match(line.strip()):
            return "\n".join(block[:end + 1])
    return "\n".join(block)


@dataclass
class Progress:
    """How far a deploy got: the phase it was in, hosts on its release out of all."""
    phase: str | None
    hosts_done: int
    hosts_total: int

    def interrupted(self, kind: str = "deploy") -> str:
        """The sentence for a deploy whose process died at this point."""
        where = f"in phase {self.phase}" if self.phase else "before its first phase"
        undo = "completes it" if kind == "rollback" else "recovers them"
        return (f"interrupted {where} after {self.hosts_done}/{self.hosts_total} hosts; "
                f"the next deploy {undo}")


def progress(record: Any) -> Progress:
    """The phase begun last and the hosts that came up on the record's release, up to where
    the process stopped (a later recovery's own events do not count)."""
    phase = None
    done: set[str] = set()
    for event in record.events:
        if event.phase == "begin:recover":
            break
        if event.phase.startswith("begin:"):
            phase = event.phase.split(":", 1)[1]
        elif event.phase == "up" and event.host and event.release == record.sha:
            done.add(event.host)
    return Progress(phase, len(done), len(record.hosts))


def shipped(record: Any) -> bool:
    """Whether the record's commits went live: a deploy that finished with success. A rolled
    back, failed or interrupted deploy shipped nothing, however far it got."""
    return record.kind == "deploy" and record.outcome == "success"


def hosts_found_down(record: Any) -> list[dict[str, Any]]:
    """Hosts that had a release but did not answer their health check before this deploy
    first switched them (the switch's restart started them): ``{"host", "phase",
    "release"}`` each. A host that went down in this deploy (it did not start) is not
    "found" down by its rollback; a new host without a release is not down."""
    found, switches = [], {}
    for e in record.events:
        if not e.host:
            continue
        if e.phase == "switch":
            switches[e.host] = switches.get(e.host, 0) + 1
        elif e.phase == "found_down" and switches.get(e.host) == 1:
            found.append({"host": e.host, "phase": e.data.get("phase"), "release": e.release})
    return found


def start_failure(record: Any) -> dict[str, Any] | None:
    """The host that did not start (summary, cause, log tail), if one stopped this deploy."""
    for event in reversed(record.events):
        if event.phase == "start_failed":
            return {"host": event.host, **event.data}
    return None


def judge_looks(record: Any) -> list[dict[str, Any]]:
    """Every judge verdict of the record, oldest first (``verdict`` dicts as the judge wrote
    them: ``elapsed_s``, ``metrics`` with counts, LLR and lines)."""
    return [e.data["verdict"] for e in record.events
            if e.phase == "judge" and isinstance(e.data.get("verdict"), dict)]


@dataclass
class Look:
    """One judge look at one metric, as the page draws it."""
    elapsed_s: float
    canary: float | None
    baseline: float | None
    canary_interval: tuple[float, float] | None
    baseline_interval: tuple[float, float] | None
    llr: float
    pass_line: float
    fail_line: float
    detectable: float | None


@dataclass
class MetricTrack:
    """One judged metric over the window: its looks, how it ended, what decided it."""
    name: str
    kind: str
    direction: str
    status: str
    reason: str
    decided_at_s: float | None
    min_effect: float
    looks: list[Look] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the last look's other numbers


def metric_tracks(record: Any, level: float = 0.95) -> list[MetricTrack]:
    """Each judged metric across the judge's looks: canary and baseline value with their
    ``level`` intervals (ratios), the sequential statistic and its pass and fail lines, the
    smallest change detectable so far."""
    from greenlight.stats.intervals import rate_interval

    tracks: dict[str, MetricTrack] = {}
    for verdict in judge_looks(record):
        elapsed = float(verdict.get("elapsed_s") or 0.0)
        for m in verdict.get("metrics", []):
            if not isinstance(m, dict) or "name" not in m:
                continue
            track = tracks.setdefault(m["name"], MetricTrack(
                m["name"], m.get("kind", "ratio"), m.get("direction", ""), "pending", "",
                None, float(m.get("min_effect") or 0.0)))
            track.status, track.reason = m.get("status", "pending"), m.get("reason", "")
            track.decided_at_s = _number_or_none(m.get("decided_at_s"))
            ratio = track.kind != "latency"
            model = "binomial" if float(m.get("unit") or 1.0) == 1.0 else "poisson"
            intervals = [rate_interval(float(m.get(f"{arm}_events") or 0),
                                       float(m.get(f"{arm}_trials") or 0), level, model)
                         if ratio else None for arm in ("canary", "baseline")]
            track.looks.append(Look(
                elapsed, _number_or_none(m.get("canary_value")),
                _number_or_none(m.get("baseline_value")), intervals[0], intervals[1],
                float(_number_or_none(m.get("llr")) or 0.0),
                float(_number_or_none(m.get("lower")) or 0.0),
                float(_number_or_none(m.get("upper")) or 0.0),
                _number_or_none(m.get("detectable"))))
            track.extra = {k: v for k, v in m.items() if "detectable" in k or k in (
                "requests_needed", "relative_change", "adjusted_p", "seed_rule",
                "breakage_rate_needed", "expected_s", "seen_enough")}
    return list(tracks.values())


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def metric_phrase(metric: dict[str, Any]) -> str:
    """``logins per request 0/59 on the canary vs 366/1,039 on the baseline``."""
    name = metric.get("name", "?")
    if metric.get("kind") == "latency":
        canary, baseline = metric.get("canary_value"), metric.get("baseline_value")
        if canary is None or baseline is None:
            return f"{name} (not enough requests)"
        return (f"{name}: median ≤ {canary:g} s on the canary vs ≤ {baseline:g} s on the "
                f"baseline")
    return (f"{name} {_count(metric.get('canary_events', 0))}/"
            f"{_count(metric.get('canary_trials', 0))} on the canary vs "
            f"{_count(metric.get('baseline_events', 0))}/"
            f"{_count(metric.get('baseline_trials', 0))} on the baseline")


def verdict_sentence(record: Any) -> str:
    """What happened, in one sentence, with the deciding metric and its numbers."""
    failure = start_failure(record)
    looks = judge_looks(record)
    last = looks[-1] if looks else None
    if record.outcome == "running":
        return f"running or {progress(record).interrupted(record.kind)}"
    if record.outcome == "interrupted":
        return f"{record_progress_sentence(record)}; {record.detail or 'recovered'}"
    if failure:
        verb = "rolled back" if record.outcome == "rolled_back" else record.outcome
        return f"{verb}: {failure.get('summary')}"
    if last and last.get("outcome") == "fail":
        failing = [m for m in last.get("metrics", []) if m.get("status") == "fail"]
        decided = failing[0].get("decided_at_s") if failing else None
        decided = decided if isinstance(decided, (int, float)) else last.get("elapsed_s")
        what = "; ".join(metric_phrase(m) for m in failing) or last.get("reason", "")
        verb = "rolled back" if record.outcome == "rolled_back" else record.outcome
        return f"{verb}: {what}, decided after {decided:.1f} s"
    if record.kind == "rollback":
        return f"rollback {record.outcome.replace('_', ' ')}: {record.detail or ''}".rstrip(": ")
    if record.outcome == "success":
        hosts = len(record.hosts)
        if last and last.get("outcome") == "pass" and last.get("undecided"):
            return (f"shipped to all {hosts} hosts: the window ended after "
                    f"{last.get('elapsed_s', 0):.1f} s with no harm detected "
                    f"({last.get('reason', '')})")
        if last and last.get("outcome") == "pass":
            return (f"shipped to all {hosts} hosts: the canary passed the judge after "
                    f"{last.get('elapsed_s', 0):.1f} s ({last.get('reason', '')})")
        return f"shipped to all {hosts} hosts ({record.detail or 'no judge ran'})"
    return f"{record.outcome.replace('_', ' ')}: {record.detail or ''}".rstrip(": ")


def record_progress_sentence(record: Any) -> str:
    """``interrupted in phase canary after 1/20 hosts`` (without what happens next)."""
    return progress(record).interrupted(record.kind).split(";")[0]


@dataclass
class HostSpan:
    """One host's move in one phase: where its time went, in seconds from the deploy's
    start (``parts``: switch, restart, health, then up until its next move or the end)."""
    host: str
    phase: str
    release: str | None
    at: float  # when the move was written to the ledger (just before the switch)
    parts: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start, end)
    was_up: bool | None = None
    failed: bool = False


PARTS = (("switch", "switch_s"), ("restart", "restart_s"), ("health", "health_s"))


def host_spans(record: Any) -> list[HostSpan]:
    """Each host move of the deploy, from the ledger's ``switch``, ``up`` and
    ``start_failed`` events; a move the process died in lasts until the record's end."""
    start = record.started_at
    end = record.finished_at or (record.events[-1].at if record.events else start)
    total = max((end - start).total_seconds(), 0.001)
    spans: list[HostSpan] = []
    moving: dict[str, HostSpan] = {}
    for event in record.events:
        if not event.host:
            continue
        at = (event.at - start).total_seconds()
        if event.phase == "switch":
            moving[event.host] = HostSpan(event.host, event.data.get("phase", "?"),
                                          event.release, at, was_up=event.data.get("was_up"))
            spans.append(moving[event.host])
        elif event.phase == "up" and event.host in moving:
            span = moving.pop(event.host)
            t = span.at + float(event.data.get("ledger_s", 0.0))
            for name, key in PARTS:
                length = float(event.data.get(key, 0.0))
                span.parts.append((name, t, t + length))
                t += length
            span.parts.append(("up", at, at))
        elif event.phase == "start_failed" and event.host in moving:
            span = moving.pop(event.host)
            span.failed = True
            span.parts.append(("failed", span.at, at))
    later: dict[str, list[HostSpan]] = {}
    for span in spans:
        later.setdefault(span.host, []).append(span)
    for moves in later.values():
        for this, nxt in zip(moves, [*moves[1:], None]):
            until = nxt.at if nxt else total
            if not this.parts:
                this.parts = [("unfinished", this.at, until)]
            this.parts = [(n, s, until if n == "up" else e) for n, s, e in this.parts]
    return spans


def summary(record: Any) -> dict[str, Any]:
    """Everything above for one record, JSON-ready (``greenlight deploys show --json``)."""
    out: dict[str, Any] = {"verdict": verdict_sentence(record), "shipped": shipped(record),
                           "hosts_found_down": hosts_found_down(record),
                           "start_failure": start_failure(record)}
    if record.outcome in ("running", "interrupted"):
        out["interrupted"] = progress(record).interrupted(record.kind)
    return out
