"""The traffic generator: bounded, loopback only, and it makes the demo app's metrics move."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from greenlight.deploy.metric_spec import series_key
from greenlight.deploy.metrics import DirectSource
from greenlight.deploy.traffic import check_loopback, generate_traffic, main
from greenlight.errors import UsageError

from tests.conftest import ROOT, free_port

DEMO = ROOT / "examples" / "demo"


@pytest.fixture
def demo_host():
    """The real demo app (``python -m app.server``) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.server", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=DEMO,
                            env={**os.environ, "PYTHONPATH": str(DEMO)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/health", timeout=0.5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_loopback_only():
    assert check_loopback("http://127.0.0.1:8001/x") == "http://127.0.0.1:8001"
    assert check_loopback("http://localhost:80") == "http://localhost:80"
    assert check_loopback("http://127.3.4.5:9") == "http://127.3.4.5:9"
    assert check_loopback("http://[::1]:8001") == "http://[::1]:8001"
    for bad in ("http://10.0.0.1:80", "http://example.com:80", "https://127.0.0.1:1",
                "file:///etc/passwd", "http://192.168.1.1"):
        with pytest.raises(UsageError, match="loopback|only http"):
            check_loopback(bad)
    with pytest.raises(UsageError, match="rate"):
        generate_traffic(["http://127.0.0.1:1"], rate=0)
    with pytest.raises(UsageError, match="duration"):
        generate_traffic(["http://127.0.0.1:1"], duration_s=-1)
    assert main(["http://8.8.8.8:80", "--duration", "1"]) == 2


def test_traffic_moves_the_demo_metrics_and_stops_at_its_bounds(demo_host):
    source = DirectSource({"h": demo_host + "/metrics"})
    source.start()
    report = generate_traffic([demo_host], rate=100, duration_s=10, max_requests=120, seed=3)
    assert report.sent == 120  # the count bound, well before the 10 s bound
    assert report.elapsed_s < 8
    assert set(report.by_status) <= {"200", "201"}, report.by_status
    totals = source.totals()["h"]
    served = sum(v for (name, _), v in totals.items() if name == "demo_requests_total")
    assert served == 120
    assert totals[series_key("demo_logins_total")] > 0
    assert totals[series_key("demo_registrations_total")] > 0
    timed = generate_traffic([demo_host], rate=20, duration_s=1.0, max_requests=10_000)
    assert 10 <= timed.sent <= 25 and timed.elapsed_s < 3
