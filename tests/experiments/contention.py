"""The lost-data reproduction, shared by the tests (scaled down) and bench/experiments.py (at
the issue's scale): app processes, each with an ExperimentClient on one store, record exposures
and events at a steady pace while another connection holds the whole store now and then."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time

from prometheus_client import CollectorRegistry

from greenlight.experiments import Experiment, ExperimentClient, ExperimentStore

NAME = "Contended"
# The fold lock first: every writer takes it first, so the locker queues behind writers in
# flight instead of deadlocking with them.
PG_TABLES = ("gl_experiment_fold_lock, gl_experiment_exposures, gl_experiment_events, "
             "gl_experiment_user_totals, gl_experiment_branch_totals")


def _ready_then_start(ready, go, start) -> float:
    """Say this process is ready; the common start time, once every process is."""
    ready.release()
    go.wait()
    return start.value


def app_process(url: str, proc: int, users: int, events_per_user: int, ready, go, start,
                seconds: float) -> None:
    """One app process: a new user every ``seconds / users`` s, exposed, then
    ``events_per_user`` events; then a normal shutdown (which flushes)."""
    client = ExperimentClient(url, registry=CollectorRegistry(), flush_seconds=0.5)
    deadline = time.monotonic() + 120
    while not client.available and time.monotonic() < deadline:  # a real app's warm-up:
        time.sleep(0.1)  # until it has read the experiments, nobody is assigned
    start_at = _ready_then_start(ready, go, start)
    interval = seconds / users
    for i in range(users):
        delay = start_at + i * interval - time.time()
        if delay > 0:
            time.sleep(delay)
        user = f"p{proc}-u{i}"
        client.branch_for(user, NAME)
        for _ in range(events_per_user):
            client.record_event(user, "purchase", 1.0)
    client.close()


def hold_store(url: str, ready, go, start, holds: list[tuple[float, float]]) -> None:
    """Another connection holding the whole store for ``seconds`` at each ``offset``: SQLite's
    ``BEGIN EXCLUSIVE``, PostgreSQL's ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE``."""
    if not url.startswith("sqlite"):
        import psycopg2  # imported before the start, like the apps' own imports
    start_at = _ready_then_start(ready, go, start)
    for offset, seconds in holds:
        delay = start_at + offset - time.time()
        if delay > 0:
            time.sleep(delay)
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.split("///", 1)[1], timeout=60, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            conn.execute("COMMIT")
        else:
            conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
            with conn.cursor() as cur:
                cur.execute(f"LOCK TABLE {PG_TABLES} IN ACCESS EXCLUSIVE MODE")
                time.sleep(seconds)
            conn.commit()
        conn.close()


def run_contention(url: str, spool_dir: str, processes: int = 20, users: int = 30_000,
                   events: int = 120_000, seconds: float = 20.0,
                   holds=((4.0, 5.0), (12.0, 5.0)), warmup: float = 120.0) -> tuple[int, int]:
    """Run the reproduction; returns the (exposures, events) the results count. The clock
    starts once every process has imported, connected and read the experiments (at most
    ``warmup`` seconds: a process not ready by then is late, as an app would be)."""
    store = ExperimentStore(url)
    store.define(Experiment(NAME, {"enhanced": 0.5}, status="rollout", rollout_pct=100),
                 "contention")
    os.environ["GREENLIGHT_EXPERIMENTS_SPOOL"] = spool_dir  # inherited by the app processes
    context = multiprocessing.get_context("spawn")
    ready, go, start = context.Semaphore(0), context.Event(), context.Value("d", 0.0)
    apps = [context.Process(target=app_process, args=(url, p, users // processes,
                                                      events // users, ready, go, start,
                                                      seconds))
            for p in range(processes)]
    locker = context.Process(target=hold_store, args=(url, ready, go, start, list(holds)))
    for process in [*apps, locker]:
        process.start()
    deadline = time.monotonic() + warmup
    for _ in range(processes + 1):
        ready.acquire(timeout=max(0.0, deadline - time.monotonic()))
    start.value = time.time() + 0.2
    go.set()
    for process in [*apps, locker]:
        process.join()
    exposed, counted = counts(store)
    store.dispose()
    return exposed, counted


def counts(store: ExperimentStore) -> tuple[int, int]:
    """(exposures, events) that ``greenlight experiment results`` counts."""
    return (sum(store.exposure_counts(NAME).values()),
            sum(a.events for a in store.metric_aggregates(NAME)))


def next_start(url: str, spool_dir: str) -> None:
    """What an app's next start does with spools its predecessors left: replay them."""
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False,
                              spool_dir=spool_dir)
    client.close()
