"""Nothing recorded is lost to a busy or absent store: the lost-data reproduction on SQLite and
PostgreSQL with exact counts, a store down for 30 s, a process killed with its spool on disk,
and a full spool — the only loss — counted and shown in the results."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from greenlight.experiments import (Experiment, ExperimentClient, ExperimentStore,
                                    render_results, results)
from tests.conftest import scaled, wait_for
from tests.experiments.contention import counts, next_start, run_contention


def _wait_for(predicate, timeout: float) -> bool:
    """The suite's wait (its deadline stretches with the machine's load); True when met."""
    return bool(wait_for(predicate, timeout, "the store and spool to catch up", interval=0.1))


def _counts(store: ExperimentStore, name: str) -> tuple[int, int]:
    return (sum(store.exposure_counts(name).values()),
            sum(a.events for a in store.metric_aggregates(name)))


def _define(url: str, name: str) -> ExperimentStore:
    store = ExperimentStore(url)
    store.define(Experiment(name, {"enhanced": 0.5}, status="rollout", rollout_pct=100), "test")
    return store


def test_reproduction_counts_exactly(db_url, tmp_path):
    """Six app processes, 1,200 users and 4,800 events in 6 s, the store held for 2 s twice:
    every exposure and event is counted (before the spool, such holds lost a third)."""
    exposed, counted = run_contention(db_url, str(tmp_path / "spool"), processes=6,
                                      users=1_200, events=4_800, seconds=6.0,
                                      holds=((1.0, 2.0), (3.5, 2.0)))
    if (exposed, counted) != (1_200, 4_800):
        # On a loaded machine an app may have shut down while the store was still busy: its
        # rows wait in its spool for the next start, as they would in production.
        assert list((tmp_path / "spool").glob("*.spool"))
        next_start(db_url, str(tmp_path / "spool"))
        store = ExperimentStore(db_url)
        exposed, counted = counts(store)
        store.dispose()
    assert (exposed, counted) == (1_200, 4_800)
    assert not list((tmp_path / "spool").glob("*.spool"))  # every spool replayed and removed


def test_store_down_for_30_seconds_loses_nothing(pg_name, relay, tmp_path):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{relay.port}/{pg_name}"
    store = _define(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_name}", "Down")
    registry = CollectorRegistry()
    client = ExperimentClient(url, registry=registry, flush_seconds=0.2, refresh_seconds=0.5,
                              max_stale_seconds=60, spool_dir=tmp_path / "spool")
    try:
        users = 0

        def record(n: int) -> None:
            nonlocal users
            for _ in range(n):
                user = f"u{users}"
                users += 1
                client.branch_for(user, "Down")
                client.record_event(user, "login")
                client.record_event(user, "purchase", 2.5)

        record(50)
        assert _wait_for(lambda: _counts(store, "Down") == (50, 100), timeout=60)
        relay.stop()
        down_until = time.monotonic() + 30
        while time.monotonic() < down_until:  # steady traffic while the store is away
            record(10)
            time.sleep(0.5)
        assert _wait_for(lambda: (registry.get_sample_value(
            "greenlight_experiment_records_spooled_total", {"kind": "event"}) or 0) > 0, 30)
        relay.start()
        record(50)
        assert _wait_for(lambda: _counts(store, "Down") == (users, 2 * users), timeout=120)
        assert (registry.get_sample_value("greenlight_experiment_records_dropped_total",
                                          {"kind": "event"}) or 0) == 0
        assert results("Down", store=store)["losses"] == []
    finally:
        client.close()
        store.dispose()


def test_killed_process_spool_is_drained_by_the_next_start(pg_name, relay, tmp_path):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{relay.port}/{pg_name}"
    store = _define(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_name}", "Killed")
    spool_dir = tmp_path / "spool"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_killed_app_after_store_stops, args=(url, str(spool_dir)))
    child.start()
    assert _wait_for(lambda: (spool_dir / "ready").exists(), timeout=60)
    relay.stop()
    (spool_dir / "go").touch()
    child.join(scaled(60))
    assert child.exitcode == -signal.SIGKILL
    spooled = list(spool_dir.glob("*.spool"))
    assert len(spooled) == 1 and spooled[0].stat().st_size > 0
    assert _counts(store, "Killed") == (0, 0)
    relay.start()
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False,
                              spool_dir=spool_dir)
    client.flush()
    assert _counts(store, "Killed") == (300, 300)
    assert not list(spool_dir.glob("*.spool"))
    client.close()
    again = ExperimentClient(url, registry=CollectorRegistry(), start=False, spool_dir=spool_dir)
    again.flush()  # nothing left to replay: counted once
    assert _counts(store, "Killed") == (300, 300)
    again.close()
    store.dispose()


def _killed_app_after_store_stops(url: str, spool_dir: str) -> None:
    """An app that read the experiments at start; the store then goes away (the test stops
    it), everything it records goes to its spool, and it dies by SIGKILL."""
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False, write_attempts=1,
                              spool_dir=spool_dir, retry_seconds=0.01)
    Path(spool_dir).mkdir(parents=True, exist_ok=True)
    (Path(spool_dir) / "ready").touch()
    deadline = time.monotonic() + 60
    while not (Path(spool_dir) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for i in range(300):
        assert client.branch_for(f"k{i}", "Killed") in ("control", "enhanced")
        client.record_event(f"k{i}", "purchase", 1.0)
    client.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def test_full_spool_is_the_only_loss_and_results_say_so(pg_name, relay, tmp_path):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{relay.port}/{pg_name}"
    store = _define(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_name}", "Full")
    registry = CollectorRegistry()
    client = ExperimentClient(url, registry=registry, start=False, write_attempts=1,
                              retry_seconds=0.01, spool_limit_bytes=75_000, batch_size=100,
                              spool_dir=tmp_path / "spool")
    relay.stop()
    started = time.time()
    for i in range(1_000):
        client.branch_for(f"f{i}", "Full")
        client.record_event(f"f{i}", "purchase", 1.0)
    client.flush()
    lost = registry.get_sample_value("greenlight_experiment_records_dropped_total",
                                     {"kind": "event"})
    spooled = registry.get_sample_value("greenlight_experiment_records_spooled_total",
                                        {"kind": "event"})
    assert lost > 0 and spooled > 0
    relay.start()
    client._drain_after = 0.0
    client.flush()
    exposed, counted = _counts(store, "Full")
    assert counted == 1_000 - lost  # exactly the events the host counted as lost are missing
    data = results("Full", store=store)
    by_kind = {loss["kind"]: loss for loss in data["losses"]}
    assert by_kind["event"]["count"] == lost
    assert started <= by_kind["event"]["first_at"] <= by_kind["event"]["last_at"] <= time.time()
    assert any(w.startswith(f"{int(lost):,} events could not be recorded between ")
               for w in data["warnings"])
    for fmt in ("text", "md", "html"):  # the CLI's formats and the page's
        assert "events could not be recorded between" in render_results(data, fmt)
    exposures_lost = by_kind.get("exposure", {"count": 0})["count"]
    assert exposed == 1_000 - exposures_lost
    client.close()
    store.dispose()


@pytest.mark.parametrize("kind", ["event"])
def test_a_replayed_batch_counts_once(tmp_path, kind):
    """The store remembers batch ids: a batch re-sent after an unacknowledged commit, or
    replayed from an adopted spool, is skipped."""
    store = _define(f"sqlite:///{tmp_path}/e.sqlite", "Once")
    store.write_exposures([("Once", "a", "enhanced", 1.0)], batch_id="h:1")
    rows = [("a", "purchase", 3.0, 2.0), ("a", "purchase", 4.0, 3.0)]
    assert store.write_events(rows, batch_id="h:2") == 2
    assert store.write_events(rows, batch_id="h:2") == 0
    assert _counts(store, "Once") == (1, 2)
    store.dispose()
