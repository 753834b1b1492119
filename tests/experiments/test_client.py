"""The in-app client against real databases: a state change reaches a running client within
seconds; exposures and events are written in batches; with the store stopped, requests served
by a real HTTP server still succeed, with control, and the fallback is logged and counted."""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from greenlight.experiments import (
    CONTROL,
    Experiment,
    ExperimentClient,
    ExperimentStore,
    set_rollout,
)
from prometheus_client import CollectorRegistry
from sqlalchemy import event

from tests.conftest import scaled, wait_for


def _wait_for(predicate, timeout=30.0):
    """The suite's one wait (its deadline stretches with the machine's load); True when met."""
    return bool(wait_for(predicate, timeout, "the experiment client to catch up",
                         interval=0.05))


def test_state_change_reaches_running_client_within_seconds(db_url):
    registry = CollectorRegistry()
    client = ExperimentClient(db_url, refresh_seconds=0.2, flush_seconds=0.2, registry=registry)
    try:
        client.define(Experiment("DemoSignup", {"enhanced": 0.5}))
        users = [f"user-{i}" for i in range(200)]
        assert {client.branch_for(u, "DemoSignup") for u in users} == {CONTROL}  # QA only
        admin = ExperimentStore(db_url)
        set_rollout("DemoSignup", 100, "ada", store=admin)
        assert _wait_for(lambda: client.branch_for("user-0", "DemoSignup") is not None
                         and client.state("DemoSignup").rollout_pct == 100)
        seen = {u: client.branch_for(u, "DemoSignup") for u in users}
        assert set(seen.values()) == {CONTROL, "enhanced"}
        for u in users[:50]:
            client.record_event(u, "purchase", 10.0)
        assert _wait_for(lambda: sum(admin.exposure_counts("DemoSignup").values()) == 200)
        assert _wait_for(lambda: sum(a.events for a in admin.metric_aggregates("DemoSignup"))
                         == 50)
        assert _wait_for(lambda: registry.get_sample_value(
            "greenlight_experiment_records_written_total", {"kind": "event"}) == 50)
        admin.dispose()
    finally:
        client.close()


def test_unknown_experiment_answers_control_and_is_counted(tmp_path):
    registry = CollectorRegistry()
    client = ExperimentClient(f"sqlite:///{tmp_path}/e.sqlite", registry=registry, start=False)
    assert client.branch_for("u1", "NeverDefined") == CONTROL
    assert registry.get_sample_value("greenlight_experiment_fallbacks_total",
                                     {"experiment": "NeverDefined", "reason": "unknown"}) == 1
    client.close()


class _App(BaseHTTPRequestHandler):
    client: ExperimentClient
    threads: set  # the threads that served a request

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.threads.add(threading.current_thread())
        user = self.path.rsplit("=", 1)[-1]
        branch = self.client.branch_for(user, "DemoSignup")
        self.client.record_event(user, "login")
        body = branch.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_store_stopped_requests_still_succeed_with_control(pg_name, relay, caplog):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{relay.port}/{pg_name}"
    registry = CollectorRegistry()
    client = ExperimentClient(url, refresh_seconds=0.2, flush_seconds=0.2, max_stale_seconds=0.5,
                              registry=registry)
    client.define(Experiment("DemoSignup", {"enhanced": 0.5}, status="rollout",
                             rollout_pct=100))
    # Every use of the store's engine, by thread: a connection attempt or a pooled checkout.
    store_threads: set = set()
    engine = client.store.engine
    event.listen(engine, "do_connect",
                 lambda *args: store_threads.add(threading.current_thread()))
    event.listen(engine, "checkout", lambda *args: store_threads.add(threading.current_thread()))
    handler = type("App", (_App,), {"client": client, "threads": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/login?user="
    try:
        before = {requests.get(base + f"u{i}", timeout=5).text for i in range(60)}
        assert before == {CONTROL, "enhanced"}
        with caplog.at_level(logging.WARNING, logger="greenlight.experiments"):
            relay.stop()
            assert _wait_for(lambda: not client.available, timeout=10)
            answers = [requests.get(base + f"u{i}", timeout=scaled(5)) for i in range(60)]
        assert all(r.status_code == 200 for r in answers)
        assert {r.text for r in answers} == {CONTROL}
        # nothing waits for the dead store on the request path: it never touches the store
        assert store_threads and not store_threads & handler.threads
        assert registry.get_sample_value("greenlight_experiment_fallbacks_total",
                                         {"experiment": "DemoSignup",
                                          "reason": "store down"}) >= 60
        assert registry.get_sample_value("greenlight_experiment_store_available") == 0
        assert any("store unavailable" in r.getMessage() for r in caplog.records)
        assert any("answers control" in r.getMessage() for r in caplog.records)
        assert _wait_for(lambda: (registry.get_sample_value(
            "greenlight_experiment_records_spooled_total", {"kind": "event"}) or 0) > 0,
            timeout=30)  # kept on disk for when the store is back, not dropped
    finally:
        server.shutdown()
        server.server_close()
        client.close(flush=False)


def test_store_down_at_startup_never_blocks_the_app():
    registry = CollectorRegistry()
    started: dict = {}

    def app_start() -> None:  # in a thread: a start-up that blocks fails the wait below
        client = ExperimentClient("postgresql+psycopg2://postgres@127.0.0.1:9/none",
                                  registry=registry, refresh_seconds=60, start=False)
        client.define(Experiment("DemoSignup", {"enhanced": 0.5}, status="rollout",
                                 rollout_pct=100))
        started["branch"] = client.branch_for("u1", "DemoSignup")
        started["client"] = client

    threading.Thread(target=app_start, daemon=True).start()
    wait_for(lambda: "client" in started, 20, "the app to start with its store down",
             interval=0.05)
    client = started["client"]
    assert started["branch"] == CONTROL
    assert registry.get_sample_value("greenlight_experiment_fallbacks_total",
                                     {"experiment": "DemoSignup", "reason": "store down"}) >= 1
    client.close(flush=False)


@pytest.mark.parametrize("n", [3])
def test_exposure_recorded_once_per_user(tmp_path, n):
    url = f"sqlite:///{tmp_path}/e.sqlite"
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False)
    client.define(Experiment("Once", {"b": 0.5}, status="rollout", rollout_pct=100))
    for _ in range(n):
        client.branch_for("alice", "Once")
    assert client.flush() == 1
    for _ in range(n):  # after it is stored, a returning user queues nothing
        client.branch_for("alice", "Once")
    assert len(client._exposures) == 0 and client.flush() == 0
    client.branch_for("bob", "Once")
    assert client.flush() == 1
    client.close()


def test_exposure_of_a_failed_write_is_spooled_then_written_once(tmp_path):
    url = f"sqlite:///{tmp_path}/e.sqlite"
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False, write_attempts=2,
                              retry_seconds=0.01)
    client.define(Experiment("Retry", {"b": 0.5}, status="rollout", rollout_pct=100))
    store = client.store
    real_write = store.write_exposures
    failures = iter([RuntimeError("store away"), RuntimeError("store away"),
                     RuntimeError("still away")])

    def failing_write(rows, batch_id=None):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_write(rows, batch_id=batch_id)

    store.write_exposures = failing_write
    client.branch_for("carol", "Retry")
    assert client.flush() == 0  # two attempts failed: spooled (durable), carol counts as recorded
    client.branch_for("carol", "Retry")
    client._drain_after = 0.0
    assert client.flush() == 0  # the replay failed once more: the spool waits
    assert sum(store.exposure_counts("Retry").values()) == 0
    client._drain_after = 0.0
    assert client.flush() == 1  # replayed; carol's second request added nothing
    assert sum(store.exposure_counts("Retry").values()) == 1
    client.close()


def test_app_import_does_not_pull_in_scipy():
    import subprocess
    import sys
    code = ("import sys\nfrom greenlight.experiments import ExperimentClient, Experiment\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
