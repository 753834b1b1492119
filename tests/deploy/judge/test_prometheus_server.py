"""The Prometheus-server path: a real Prometheus (Debian package) scrapes loopback exporters
every second; the judge's totals come from its HTTP API and match the direct path."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from greenlight.deploy.judge import Judge
from greenlight.deploy.metric_spec import MetricSpec, series_key
from greenlight.deploy.metrics import (
    CanaryWatch,
    MetricsError,
    PrometheusSource,
    default_instance,
    needed_names,
)

from tests.conftest import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(not Path(PROMETHEUS).exists(),
                                reason="prometheus not installed: run scripts/system-deps.sh")
LOGINS = series_key("demo_logins_total")
SPECS = [MetricSpec("logins", numerator="demo_logins_total", denominator="demo_requests_total",
                    min_effect=0.25),
         MetricSpec("latency", kind="latency", histogram="demo_request_duration_seconds",
                    direction="higher-is-bad", min_effect=0.1)]


@pytest.fixture
def prometheus(tmp_path):
    """Start a Prometheus with its own config and data dir; yields (base URL, start fn)."""
    procs = []

    def start(targets: list[str]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        listed = ", ".join(f"'{t}'" for t in targets)
        config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                          "scrape_configs:\n  - job_name: demo\n    static_configs:\n"
                          f"      - targets: [{listed}]\n")
        log = open(tmp_path / "prometheus.log", "wb")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/-/ready", timeout=1).status_code == 200:
                    return base
            except requests.RequestException:
                pass
            if procs[-1].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("prometheus did not start: "
                             + (tmp_path / "prometheus.log").read_text(errors="replace"))

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(read, expected, timeout=15.0):
    """Poll until the canary and baseline logins reach ``expected`` (Prometheus scrapes
    every second); return the last totals."""
    deadline = time.monotonic() + timeout
    c, b = read()
    while time.monotonic() < deadline:
        c, b = read()
        if (c.get(LOGINS), b.get(LOGINS)) == expected:
            break
        time.sleep(0.3)
    return c, b


def test_prometheus_api_path_counts_like_the_direct_path_across_a_restart(exporter,
                                                                          prometheus):
    canary, baseline = exporter(), exporter()
    canary.serve(100, 30)
    baseline.serve(100, 30)
    hosts = {"canary": canary.url, "baseline": baseline.url}
    base = prometheus([default_instance(u) for u in hosts.values()])
    source = PrometheusSource(base, {h: default_instance(u) for h, u in hosts.items()},
                              needed_names(SPECS))
    # wait until Prometheus has scraped both targets at least once
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(source.query("demo_logins_total")) == 2:
            break
        time.sleep(0.2)
    assert len(source.query("demo_logins_total")) == 2
    watch = CanaryWatch(source, ["canary"], ["baseline"])
    watch.start()
    time.sleep(1.2)  # one scrape after the window's start holds the starting values
    canary.serve(200, 20, slow=50)
    baseline.serve(200, 60)
    c, b = wait_for(watch.read, (20.0, 60.0))
    assert c[LOGINS] == 20 and b[LOGINS] == 60
    assert c[series_key("demo_requests_total", {"endpoint": "/login"})] == 200
    slow = series_key("demo_request_duration_seconds_bucket", {"endpoint": "/login", "le": "0.1"})
    assert c[slow] == 150 and b[slow] == 200
    # the canary restarts: its counters start again from zero; growth keeps adding up
    canary.restart()
    canary.serve(40, 4)
    baseline.serve(40, 12)
    c, b = wait_for(watch.read, (24.0, 72.0))
    assert (c[LOGINS], b[LOGINS]) == (24, 72)
    verdict = Judge(SPECS, max_window_s=60).observe(c, b, elapsed_s=10)
    assert verdict.metrics[0].canary_trials == 240
    assert verdict.metrics[0].relative_change == pytest.approx(24 / 72 - 1)


def test_prometheus_errors_name_the_server(prometheus):
    base = prometheus(["127.0.0.1:9"])
    source = PrometheusSource(base, {"h": "127.0.0.1:9"}, ["x_total"])
    with pytest.raises(MetricsError, match="refused"):
        source.query("sum(")
    dead = PrometheusSource(f"http://127.0.0.1:{free_port()}", {"h": "x:1"}, ["x_total"],
                            timeout=1)
    with pytest.raises(MetricsError, match="Prometheus at"):
        dead.totals()
