"""Real HTTP exporters for the metrics tests: prometheus_client's own server on loopback."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_wsgi_server


class Exporter:
    """A fake host: counters of the demo app on a real /metrics HTTP endpoint. ``restart()``
    brings up fresh counters (all back to zero) on the same port, as a restarted host does."""

    def __init__(self):
        self.port = 0
        self._server = None
        self.start()

    def start(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("demo_requests", "requests", ["endpoint"], registry=self.registry)
        self.logins = Counter("demo_logins", "logins", registry=self.registry)
        self.latency = Histogram("demo_request_duration_seconds", "latency", ["endpoint"],
                                 registry=self.registry, buckets=(0.01, 0.1, 1.0))
        self._server, _ = start_wsgi_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.port = self._server.server_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def serve(self, requests: int, logins: int, slow: int = 0) -> None:
        self.requests.labels("/login").inc(requests)
        self.logins.inc(logins)
        for i in range(requests):
            self.latency.labels("/login").observe(0.5 if i < slow else 0.005)


@pytest.fixture
def exporter():
    made = []

    def factory() -> Exporter:
        made.append(Exporter())
        return made[-1]

    yield factory
    for e in made:
        e.stop()
