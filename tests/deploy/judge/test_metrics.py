"""Metrics: parsing, counter deltas with resets, and scraping real /metrics endpoints."""
from __future__ import annotations

import pytest

from greenlight.deploy.judge import Judge
from greenlight.deploy.metric_spec import MetricSpec, series_key
from greenlight.deploy.metrics import (
    CanaryWatch,
    DirectSource,
    MetricsError,
    PrometheusSource,
    counter_deltas,
    default_instance,
    needed_names,
    parse_metrics,
    series_deltas,
    source_from_settings,
    sum_hosts,
)
from greenlight.errors import UsageError

TEXT = """# HELP demo_requests_total requests
# TYPE demo_requests_total counter
demo_requests_total{endpoint="/login"} 120.0
demo_requests_total{endpoint="/"} 30.0
demo_requests_created{endpoint="/login"} 1700000000.0
demo_requests_created{endpoint="/"} 1700000000.0
# TYPE demo_up gauge
demo_up 1.0
# TYPE lat histogram
lat_bucket{le="0.1"} 4.0
lat_bucket{le="+Inf"} 6.0
lat_count 6.0
lat_sum 1.5
"""
LOGIN = series_key("demo_requests_total", {"endpoint": "/login"})


def test_parse_keeps_counters_and_histograms_not_gauges():
    snap = parse_metrics(TEXT)
    assert snap.values[LOGIN] == 120
    assert snap.values[series_key("lat_bucket", {"le": "+Inf"})] == 6
    assert series_key("demo_up") not in snap.values
    assert snap.created[LOGIN[0][:-len("_total")], LOGIN[1]] == 1700000000.0


def test_parse_error_names_the_source():
    with pytest.raises(MetricsError, match="host h1"):
        parse_metrics("demo_requests_total{endpoint=\"/\" 1\n", where="host h1")


def test_deltas_growth_new_series_and_reset():
    before = parse_metrics(TEXT)
    assert set(counter_deltas(None, before).values()) == {0.0}
    after = parse_metrics(TEXT.replace("120.0", "150.0").replace(
        'demo_requests_total{endpoint="/"} 30.0',
        'demo_requests_total{endpoint="/"} 30.0\ndemo_requests_total{endpoint="/new"} 4.0'))
    d = counter_deltas(before, after)
    assert d[LOGIN] == 30 and d[series_key("demo_requests_total", {"endpoint": "/new"})] == 4
    # the host restarted: 120 -> 7 means 7 requests since the restart, not -113
    restarted = parse_metrics(TEXT.replace("120.0", "7.0"))
    assert counter_deltas(before, restarted)[LOGIN] == 7


def test_reset_seen_through_created_time_even_when_value_grew_past_the_old_one():
    before = parse_metrics(TEXT)
    restarted = parse_metrics(TEXT.replace("120.0", "500.0").replace(
        'demo_requests_created{endpoint="/login"} 1700000000.0',
        'demo_requests_created{endpoint="/login"} 1700000900.0'))
    assert counter_deltas(before, restarted)[LOGIN] == 500


def test_series_deltas_over_raw_values_with_reset():
    assert series_deltas([10, 15, 15, 3, 8]) == 5 + 0 + 3 + 5
    assert series_deltas([4]) == 0
    assert sum_hosts({"a": {LOGIN: 2}, "b": {LOGIN: 3}, "c": {LOGIN: 100}}, ["a", "b"]) == {
        LOGIN: 5}


def test_direct_scrape_of_real_endpoints_with_a_restarted_host(exporter):
    canary, baseline = exporter(), exporter()
    canary.serve(100, 30)
    baseline.serve(100, 30)
    source = DirectSource({"canary": canary.url, "baseline": baseline.url}, timeout=2)
    watch = CanaryWatch(source, ["canary"], ["baseline"])
    watch.start()
    canary.serve(200, 60, slow=10)
    baseline.serve(200, 60)
    c, b = watch.read()
    assert c[series_key("demo_logins_total")] == 60
    assert c[series_key("demo_requests_total", {"endpoint": "/login"})] == 200
    assert b[series_key("demo_logins_total")] == 60
    slow_le = series_key("demo_request_duration_seconds_bucket",
                         {"endpoint": "/login", "le": "0.1"})
    assert c[slow_le] == 190 and b[slow_le] == 200
    # the canary restarts (counters back to 0) and serves 50 more requests
    canary.restart()
    canary.serve(50, 15)
    baseline.serve(50, 15)
    c, b = watch.read()
    assert c[series_key("demo_logins_total")] == 75  # 60 + 15: no drop, no negative
    assert b[series_key("demo_logins_total")] == 75
    judge = Judge([MetricSpec("logins", numerator="demo_logins_total",
                              denominator="demo_requests_total", min_effect=0.25)])
    verdict = judge.observe(c, b, elapsed_s=5)
    assert verdict.outcome != "fail"
    assert verdict.metrics[0].relative_change == pytest.approx(0.0)


def test_unreachable_host_keeps_totals_and_reports_the_error(exporter):
    host = exporter()
    source = DirectSource({"h": host.url}, timeout=1)
    source.start()
    host.serve(10, 3)
    assert source.totals()["h"][series_key("demo_logins_total")] == 3
    host.stop()
    totals = source.totals()
    assert totals["h"][series_key("demo_logins_total")] == 3
    assert "host h" in source.errors["h"] and host.url in source.errors["h"]


def test_settings_choose_the_source():
    specs = [MetricSpec("l", numerator="a_total", denominator="b_total"),
             MetricSpec("lat", kind="latency", histogram="h")]
    assert needed_names(specs) == ["a_total", "b_total", "h_bucket"]
    urls = {"h1": "http://127.0.0.1:8001/metrics"}
    assert isinstance(source_from_settings({}, urls, specs), DirectSource)
    prom = source_from_settings({"prometheus_url": "http://127.0.0.1:9090"}, urls, specs)
    assert isinstance(prom, PrometheusSource) and prom.instances == {"h1": "127.0.0.1:8001"}
    assert default_instance("http://localhost/metrics") == "localhost:80"
    with pytest.raises(UsageError):
        PrometheusSource("ftp://x", {}, ["a"])
    with pytest.raises(UsageError):
        CanaryWatch(DirectSource(urls), ["h1"], ["h1"])
