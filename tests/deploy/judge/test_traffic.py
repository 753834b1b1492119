"""The traffic generator: bounded, loopback only, and it makes the demo app's metrics move."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import requests
from greenlight.deploy.metric_spec import series_key
from greenlight.deploy.metrics import DirectSource
from greenlight.deploy.traffic import TrafficReport, check_loopback, generate_traffic, main
from greenlight.errors import UsageError

from tests.conftest import ROOT, free_port, wait_for

DEMO = ROOT / "examples" / "demo"


@pytest.fixture
def demo_host():
    """The real demo app (``python -m app.server``) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.server", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=DEMO,
                            env={**os.environ, "PYTHONPATH": str(DEMO)})
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(url + "/health", timeout=2).ok, 10, "the demo app to answer",
             interval=0.1, retry_on=(requests.RequestException,))
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


def _generate(seconds: float, **kwargs) -> TrafficReport:
    """generate_traffic in a thread; its report once it has returned by itself, which it must
    within ``seconds`` (on a quiet machine)."""
    stop, done = threading.Event(), []
    thread = threading.Thread(target=lambda: done.append(generate_traffic(stop=stop, **kwargs)),
                              daemon=True)
    thread.start()
    try:
        return wait_for(lambda: done, seconds, "the traffic to end at its bound")[0]
    finally:
        stop.set()
        thread.join()


def test_traffic_moves_the_demo_metrics_and_stops_at_its_bounds(demo_host):
    source = DirectSource({"h": demo_host + "/metrics"})
    source.start()
    # 120 requests at 100/s: only the count bound can end it in time, not the 10-minute one
    report = _generate(20, urls=[demo_host], rate=100, duration_s=600, max_requests=120, seed=3)
    assert report.sent == 120
    assert set(report.by_status) <= {"200", "201"}, report.by_status
    totals = source.totals()["h"]
    served = sum(v for (name, _), v in totals.items() if name == "demo_requests_total")
    assert served == 120
    assert totals[series_key("demo_logins_total")] > 0
    assert totals[series_key("demo_registrations_total")] > 0
    # 10,000 requests at 20/s would take 500 s: only the 1-s duration can end it in time
    timed = _generate(10, urls=[demo_host], rate=20, duration_s=1.0, max_requests=10_000)
    assert timed.elapsed_s >= 1.0
    assert 1 <= timed.sent <= 20 * timed.elapsed_s + 1  # at most one request per 1/20 s
