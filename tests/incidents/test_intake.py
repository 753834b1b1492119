"""Intake: Alertmanager's real webhook JSON and the plain form accepted; garbage told why."""
from __future__ import annotations

import json
import re
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


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 _json_values.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(st.sampled_from(["title", "started_at", "alerts", "trace",
                                                  "service"]), _json_values)
                 .map(lambda v: json.dumps(v).encode())))
def test_any_body_is_an_incident_or_a_usage_error(body):
    """No body makes the intake crash: it is accepted or refused with a reason (HTTP 400)."""
    try:
        incident = parse_intake(body, "application/json")
    except UsageError as exc:
        assert str(exc)
    else:
        assert incident.title and incident.started_at.tzinfo is not None


@pytest.mark.parametrize("body, reason", [
    ({"alerts": [{"startsAt": "2026-05-01T12:00:00Z"}], "commonLabels": 5},
     "commonLabels and commonAnnotations must be objects"),
    ({"alerts": [{"startsAt": "2026-05-01T12:00:00Z", "annotations": [1]}]},
     "alerts[0].annotations must be an object"),
    ({"title": "x", "started_at": 1e300}, "out of range"),
    ({"alerts": [{"startsAt": 12}], "status": "firing"}, None),
])
def test_odd_shapes_are_refused_with_a_reason(body, reason):
    if reason is None:
        assert parse_intake(json.dumps(body)).started_at.year == 1970
        return
    with pytest.raises(UsageError, match=re.escape(reason)):
        parse_intake(json.dumps(body))


_alertish = st.fixed_dictionaries(
    {"alerts": st.lists(st.fixed_dictionaries(
        {"startsAt": st.one_of(st.just("2026-05-01T12:00:00.5Z"), _json_values),
         "labels": _json_values, "annotations": _json_values,
         "status": st.sampled_from(["firing", "resolved", 3])}), max_size=3)},
    optional={"commonLabels": _json_values, "commonAnnotations": _json_values,
              "status": _json_values})


@settings(max_examples=150, deadline=None)
@given(_alertish)
def test_any_alertmanager_shaped_body_is_an_incident_or_a_usage_error(body):
    try:
        incident = parse_intake(json.dumps(body).encode(), "application/json")
    except UsageError as exc:
        assert str(exc)
    else:
        assert incident.source == "alertmanager" and incident.started_at.tzinfo is not None
