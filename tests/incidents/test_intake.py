"""Intake: Alertmanager's real webhook JSON and the plain form accepted; garbage told why."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from greenlight.errors import UsageError
from greenlight.incidents import parse_intake
from greenlight.incidents.intake import parse_duration, parse_time

# As Alertmanager 0.27 posts it (webhook payload version 4), with nanosecond timestamps.
ALERTMANAGER = {
    "version": "4",
    "groupKey": "{}:{alertname=\"LoginRateDrop\"}",
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "greenlight",
    "groupLabels": {"alertname": "LoginRateDrop"},
    "commonLabels": {"alertname": "LoginRateDrop", "severity": "page", "job": "demo"},
    "commonAnnotations": {"summary": "login rate fell by half"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {"status": "firing",
         "labels": {"alertname": "LoginRateDrop", "instance": "127.0.0.1:18101",
                    "job": "demo", "severity": "page"},
         "annotations": {"summary": "login rate fell by half",
                         "trace": 'File "/srv/app/logic.py", line 12, in login'},
         "startsAt": "2026-05-01T12:03:10.123456789Z",
         "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28demo_logins_total%5B1m%5D%29",
         "fingerprint": "c5c6d7b0a1e2f3a4"},
        {"status": "firing",
         "labels": {"alertname": "LoginRateDrop", "instance": "127.0.0.1:18102", "job": "demo"},
         "annotations": {"summary": "login rate fell by half"},
         "startsAt": "2026-05-01T12:01:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph", "fingerprint": "d1"},
    ],
}


def test_alertmanager_webhook_becomes_one_incident_from_the_earliest_alert():
    incident = parse_intake(json.dumps(ALERTMANAGER).encode(), "application/json; charset=utf-8")
    assert incident.source == "alertmanager"
    assert incident.started_at == datetime(2026, 5, 1, 12, 1, tzinfo=timezone.utc)
    assert incident.title.startswith("LoginRateDrop: login rate fell by half")
    assert "+1 more alert" in incident.title
    assert incident.service == "demo"
    assert len(incident.evidence["alerts"]) == 2
    assert incident.evidence["alerts"][0]["endsAt"] is None


def test_trace_annotation_is_the_trace():
    single = dict(ALERTMANAGER, alerts=ALERTMANAGER["alerts"][:1])
    incident = parse_intake(json.dumps(single).encode(), "application/json")
    assert incident.trace and "logic.py" in incident.trace
    assert incident.started_at.microsecond == 123456


def test_plain_form():
    body = {"title": "checkout 500s", "started_at": "2026-05-01T12:00:00+02:00",
            "service": "shop", "trace": "app/logic.py:7", "ticket": "OPS-1"}
    incident = parse_intake(json.dumps(body), "application/json")
    assert incident.source == "json"
    assert incident.started_at == datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert incident.trace == "app/logic.py:7" and incident.evidence == {"ticket": "OPS-1"}


@pytest.mark.parametrize("body, content_type, reason", [
    (b"", "application/json", "body is empty"),
    (b"<html>nope</html>", "application/json", "not JSON: Expecting value at line 1 column 1"),
    (b"[1, 2]", "application/json", "JSON list; expected an object"),
    (b'{"title": "x"}', "application/json", "missing field(s) started_at"),
    (b'{"title": "x", "started_at": "yesterday-ish"}', None, "time 'yesterday-ish'"),
    (b'{"title": "", "started_at": 1}', None, "title must be a non-empty string"),
    (b'{"alerts": []}', None, "has no alerts"),
    (b'{"alerts": [{"labels": {}}]}', None, "alerts[0] has no startsAt"),
    (b'{"title": "x", "started_at": "now"}', "text/html", "content type 'text/html'"),
    (b"\xff\xfe", "application/json", "not UTF-8"),
])
def test_garbage_gets_a_clear_reason(body, content_type, reason):
    with pytest.raises(UsageError) as caught:
        parse_intake(body, content_type)
    assert reason in str(caught.value)


def test_times_and_windows():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_time("-30m", now) == datetime(2026, 5, 1, 11, 30, tzinfo=timezone.utc)
    assert parse_time("2026-05-01 09:15") == datetime(2026, 5, 1, 9, 15, tzinfo=timezone.utc)
    assert parse_time("1777636800") == datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_duration("6h").total_seconds() == 21600
    assert parse_duration("90m").total_seconds() == 5400
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("six hours")
