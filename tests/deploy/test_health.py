"""The health check on a real HTTP server: a host that starts answering is up within the fast
poll (not a whole health_interval later), and a host that never answers still gets the whole
budget of retries × interval before it is declared unhealthy."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from greenlight.deploy import health
from greenlight.deploy.health import check_health
from tests.conftest import free_ports


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _serve_after(port: int, delay: float) -> tuple[list, threading.Thread]:
    """Start a server on ``port`` after ``delay`` s; the list gets (server, monotonic start)."""
    holder: list = []

    def run():
        time.sleep(delay)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Ok)
        holder.append((server, time.monotonic()))
        server.serve_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return holder, thread


def test_a_starting_host_counts_as_up_within_the_fast_poll():
    [port] = free_ports(1)
    holder, _ = _serve_after(port, 0.6)
    try:
        result = check_health(f"http://127.0.0.1:{port}/health", timeout=1.0, retries=20,
                              interval=0.25)
        assert result.healthy and result.detail == "200"
        # It asked at the fast poll, more often than the 0.25-s spacing's 3 tries in 0.6 s.
        assert result.attempts > 4
    finally:
        if holder:
            holder[0][0].shutdown()


def test_a_dead_host_gets_the_whole_budget():
    [port] = free_ports(1)
    started = time.monotonic()
    result = check_health(f"http://127.0.0.1:{port}/health", timeout=0.5, retries=5,
                          interval=0.2)
    took = time.monotonic() - started
    assert not result.healthy and "ConnectionError" in result.detail
    assert took >= 0.8 - 0.01  # (5 - 1) × 0.2 s, however fast the refusals come
    assert result.attempts >= 5 and result.seconds >= 0.79


def test_one_try_without_waiting(monkeypatch):
    [port] = free_ports(1)
    slept: list[float] = []
    monkeypatch.setattr(health.time, "sleep", slept.append)
    result = check_health(f"http://127.0.0.1:{port}/health", timeout=0.5, retries=1,
                          interval=0.0)
    assert not result.healthy and result.attempts == 1
    assert slept == []  # one try and no pause after it
