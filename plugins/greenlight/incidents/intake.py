"""Turn what arrives (an Alertmanager webhook, a plain JSON form, a rollback) into an Incident.

The webhook endpoint on the master hands the raw body here; every refusal is a UsageError whose
message says what was wrong and what was expected, so the endpoint can answer 400 with it.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from greenlight.errors import UsageError
from greenlight.incidents.model import Incident, utc

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ZERO_TIME = "0001-01-01T00:00:00Z"     # Alertmanager's "not ended"


def parse_duration(text: str) -> timedelta:
    """``6h``, ``90m``, ``2d``, ``3600`` (seconds) -> timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise UsageError(f"window {text!r} is not a duration; write e.g. 6h, 90m, 2d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_time(text: str | int | float, now: datetime | None = None) -> datetime:
    """ISO 8601 (``2026-05-01T12:00:00Z``, naive = UTC), epoch seconds, ``now`` or ``-30m``."""
    if isinstance(text, (int, float)):
        try:
            return datetime.fromtimestamp(text, timezone.utc)
        except (OverflowError, ValueError, OSError):
            raise UsageError(f"time {text!r} is out of range for epoch seconds") from None
    raw = str(text).strip()
    now = now or datetime.now(timezone.utc)
    if raw == "now":
        return now
    if raw.startswith("-") and _DURATION.match(raw[1:]):
        return now - parse_duration(raw[1:])
    if re.fullmatch(r"\d{9,11}(\.\d+)?", raw):
        return parse_time(float(raw))
    iso = raw.replace("Z", "+00:00").replace("z", "+00:00")
    # Alertmanager sends nanoseconds; Python takes at most microseconds.
    iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)
    try:
        return utc(datetime.fromisoformat(iso))
    except ValueError:
        raise UsageError(f"time {raw!r} is not understood; write ISO 8601 like "
                         f"2026-05-01T12:00:00Z, epoch seconds, 'now' or '-30m'") from None


def parse_intake(body: bytes | str, content_type: str | None = "application/json") -> Incident:
    """An Alertmanager webhook (``alerts`` list) or a plain form (``title``, ``started_at``)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    accepted = ("application/json", "text/json", "text/plain", "")
    if kind not in accepted and not kind.endswith("+json"):
        raise UsageError(f"content type {kind!r} is not accepted; send application/json "
                         f"(an Alertmanager webhook or {{title, started_at, service, trace}})")
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"body is not UTF-8 (byte {exc.start}); send JSON text") from None
    if not body.strip():
        raise UsageError("body is empty; send an Alertmanager webhook or "
                         "{\"title\": ..., \"started_at\": ...}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UsageError(f"body is not JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}") from None
    if not isinstance(data, dict):
        raise UsageError(f"body is a JSON {type(data).__name__}; expected an object "
                         f"(an Alertmanager webhook or {{title, started_at}})")
    if "alerts" in data:
        return incident_from_alertmanager(data)
    return incident_from_form(data)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where} must be a non-empty string, got {value!r}")
    return value.strip()


def incident_from_form(data: dict[str, Any]) -> Incident:
    """The plain form: ``title``, ``started_at``, optional ``service`` and ``trace``."""
    missing = [k for k in ("title", "started_at") if k not in data]
    if missing:
        raise UsageError(f"missing field(s) {', '.join(missing)}; the plain form is "
                         f"{{\"title\", \"started_at\", \"service\"?, \"trace\"?}} and an "
                         f"Alertmanager webhook has \"alerts\"")
    trace = data.get("trace")
    if trace is not None and not isinstance(trace, str):
        raise UsageError(f"trace must be the stack trace text, got {type(trace).__name__}")
    service = data.get("service")
    started = data["started_at"]
    if not isinstance(started, (str, int, float)) or isinstance(started, bool):
        raise UsageError(f"started_at must be an ISO 8601 time or epoch seconds, got {started!r}")
    return Incident(title=_text(data["title"], "title"), started_at=parse_time(started),
                    source="json", service=str(service) if service else None, trace=trace,
                    evidence={k: v for k, v in data.items()
                              if k not in ("title", "started_at", "service", "trace")})


def incident_from_alertmanager(data: dict[str, Any]) -> Incident:
    """Alertmanager's webhook (version 4): one incident for the group, from its firing alerts.

    Starts at the earliest ``startsAt``; title from ``alertname`` and the summary annotation;
    service from the ``service``/``job``/``app`` label; a ``trace`` annotation is the trace.
    """
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise UsageError("Alertmanager webhook has no alerts (\"alerts\" must be a non-empty list)")
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise UsageError(f"alerts[{i}] is not an object")
        for key in ("labels", "annotations"):
            if not isinstance(alert.get(key) or {}, dict):
                raise UsageError(f"alerts[{i}].{key} must be an object")
        if "startsAt" not in alert:
            raise UsageError(f"alerts[{i}] has no startsAt; is this an Alertmanager webhook?")
    firing = [a for a in alerts if a.get("status", "firing") == "firing"] or alerts
    starts = []
    for i, alert in enumerate(firing):
        try:
            starts.append(parse_time(alert["startsAt"]))
        except UsageError as exc:
            raise UsageError(f"alerts[{i}].startsAt: {exc}") from None
    common_labels = data.get("commonLabels") or {}
    common_ann = data.get("commonAnnotations") or {}
    if not isinstance(common_labels, dict) or not isinstance(common_ann, dict):
        raise UsageError("commonLabels and commonAnnotations must be objects")
    first = firing[starts.index(min(starts))]
    labels = {**common_labels, **(first.get("labels") or {})}
    annotations = {**common_ann, **(first.get("annotations") or {})}
    name = labels.get("alertname") or "alert"
    summary = annotations.get("summary") or annotations.get("description") or ""
    title = f"{name}: {summary}" if summary else str(name)
    if len(firing) > 1:
        title += f" (+{len(firing) - 1} more alert{'s' if len(firing) > 2 else ''})"
    service = labels.get("service") or labels.get("job") or labels.get("app")
    trace = annotations.get("trace") or annotations.get("stacktrace")
    evidence = {
        "status": data.get("status"), "receiver": data.get("receiver"),
        "groupKey": data.get("groupKey"), "externalURL": data.get("externalURL"),
        "alerts": [{"status": a.get("status"), "labels": a.get("labels") or {},
                    "annotations": a.get("annotations") or {}, "startsAt": a.get("startsAt"),
                    "endsAt": None if a.get("endsAt") in (None, _ZERO_TIME) else a.get("endsAt"),
                    "generatorURL": a.get("generatorURL"), "fingerprint": a.get("fingerprint")}
                   for a in alerts],
    }
    return Incident(title=str(title), started_at=min(starts), source="alertmanager",
                    service=str(service) if service else None,
                    trace=str(trace) if trace else None, evidence=evidence)


def incident_from_request(request: Any, ledger: Any = None) -> Incident:
    """An incident the deploy engine asked for (``Ledger.incidents()``: the judge rolled back).

    Its data (failing metrics, judge table) becomes the evidence. It starts when the judge saw
    the failure (the canary still served the bad sha then), else when the deploy's sha went
    live on a host, else when the deploy started; without the ledger, at the request itself.
    """
    data = dict(getattr(request, "data", {}) or {})
    started = data.get("started_at")
    when = parse_time(started) if started else request.opened_at
    if not started and ledger is not None and request.deploy_id is not None:
        when = _rollback_start(ledger.deploy(request.deploy_id)) or when
    return Incident(title=request.summary, started_at=when, source="rollback",
                    service=data.get("service"), trace=data.get("trace"),
                    evidence={"request_id": request.id, "deploy_id": request.deploy_id,
                              "sha": request.sha, **data})


def _rollback_start(deploy: Any) -> datetime | None:
    failed = [e.at for e in deploy.events
              if isinstance(e.data, dict) and str(e.data.get("outcome", "")).lower() == "fail"]
    if failed:
        return min(failed)
    switched = [e.at for e in deploy.events if e.release == deploy.sha]
    if switched:
        return max(switched)
    return deploy.started_at
