"""Experiments benchmark: branch assignments per second in one process (state cached), and the
time to compute results for 1,000,000 exposures and 3,000,000 events on SQLite and PostgreSQL.

    .venv/bin/python bench/experiments.py [--users 1000000] [--events 3000000] [--no-postgres]
    .venv/bin/python bench/experiments.py --contention [--no-postgres]

``--contention`` runs the lost-data reproduction instead: 20 processes, each with an
``ExperimentClient`` on one store, record 30,000 exposures and 120,000 events at a steady pace
over 20 s while another connection holds the store (SQLite ``BEGIN EXCLUSIVE``, PostgreSQL
``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE``) for 5 s twice; it prints how many of them the
results count. Run it on an older checkout with ``PYTHONPATH=<checkout>/plugins`` for "before".

Goals: ≥ 1,000,000 assignments/s; results ≤ 2 s on PostgreSQL. CPU time is printed
beside wall time because a loaded machine slows the wall clock, not the work.
"""
from __future__ import annotations

import argparse
import io
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from greenlight.experiments import (CONTROL, Bucket, CompiledExperiment, EventFilter,
                                    Experiment, ExperimentClient, ExperimentStore, define,
                                    report, results, save_bucket)
from greenlight.experiments.store import user_key

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.experiments.contention import (  # noqa: E402 - the one reproduction
    counts, next_start, run_contention)

PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="test")
NAME = "BenchSignup"


def bench_assignment(users: int) -> None:
    """Three request mixes through ``ExperimentClient.branch_for`` (writer thread not running,
    so only the request path is measured): every user new (hash + exposure queued), returning
    users (100,000 users, 10 requests each, their exposures already stored), and new users at a
    20% rollout (80% leave after the hash)."""
    print(f"== branch_for, state cached, {users:,} calls per case, one process")
    returning = [f"back-{i}" for i in range(100_000)] * (users // 100_000 or 1)
    cases = [("rollout 100%, 50/50, every user new (hash + queue exposure)", 100,
              [f"user-{i}" for i in range(users)]),
             ("rollout 100%, 50/50, returning users (exposure already stored)", 100, returning),
             ("rollout 20%, 50/50, every user new", 20, [f"new-{i}" for i in range(users)])]
    with tempfile.TemporaryDirectory() as tmp:
        client = ExperimentClient(f"sqlite:///{tmp}/a.sqlite", registry=CollectorRegistry(),
                                  start=False)
        for label, pct, ids in cases:
            name = f"Assign{pct}"
            client.define(Experiment(name, {"enhanced": 0.5}, status="rollout",
                                     rollout_pct=pct))
            if ids is returning:  # first request of each user, then the writer stores them
                for user in ids[:100_000]:
                    client.branch_for(user, name)
                client.flush()
            branch_for = client.branch_for
            wall, cpu = time.perf_counter(), time.process_time()
            for user in ids:
                branch_for(user, name)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"  {label:62s} {len(ids) / wall / 1e6:5.2f} M/s wall, "
                  f"{len(ids) / cpu / 1e6:5.2f} M/s CPU  (goal >= 1.00)")
            queued = client._exposures
            if pct == 100 and ids is not returning and len(queued) > 100_000:
                # The work moved off the request path, measured too: the writer's drain
                # (dedupe against the stored set, batch write to SQLite, mark stored).
                while len(queued) > 100_000:
                    queued.pop()
                queued.extend(list(queued)[:20_000])  # repeats of the same users, dropped
                rows = len(queued)
                spent = time.perf_counter()
                stored = client.flush()
                spent = time.perf_counter() - spent
                print(f"  {'  writer thread: drain ' + f'{rows:,} queued, store {stored:,}':62s} "
                      f"{rows / spent / 1e3:5.0f} k rows/s (background, SQLite)")
            queued.clear()
        client.close(flush=False)
    load = os.getloadavg()[0]
    print(f"  (load average {load:.1f} on {os.cpu_count()} CPUs while measuring)")


T0 = 1_793_491_200.0  # 2026-11-01T00:00:00Z
DAYS = 28
MID = T0 + 14 * 86400 + 12 * 3600 + 13 * 60 + 7  # mid-range: mid-day and mid-hour


def make_data(users: int, events: int, seed: int = 1):
    """Exposures by the real assignment, spread over 28 days; events: logins, registrations,
    purchases (enhanced converts a little more often, so results have something to find), each
    some exponentially distributed time (mean 3 days) after its user's exposure, 5% of them
    before it (they must not count)."""
    compiled = CompiledExperiment(Experiment(NAME, {"enhanced": 0.5}, status="rollout",
                                             rollout_pct=100))
    ids = [f"user-{i}" for i in range(users)]
    branches = [compiled.assign(u)[0] for u in ids]
    rng = np.random.default_rng(seed)
    exposed_at = T0 + rng.random(users) * DAYS * 86400
    who = rng.integers(0, users, events)
    enhanced = np.array([b != CONTROL for b in branches])[who]
    kind = rng.random(events)
    boost = np.where(enhanced, 0.03, 0.0)
    names = np.where(kind < 0.6 - boost, "login",
                     np.where(kind < 0.7 - boost, "registration", "purchase"))
    values = np.where(names == "purchase", np.round(rng.gamma(2.0, 12.0, events), 2), 1.0)
    delay = rng.exponential(3 * 86400, events) * np.where(rng.random(events) < 0.05, -0.1, 1.0)
    at = np.round(exposed_at[who] + delay, 3)
    props = np.where(names == "login", np.where(rng.random(events) < 0.6,
                                                 '{"platform":"client"}', '{"platform":"web"}'),
                     r"\N")
    order = np.argsort(at, kind="stable")  # logs arrive in time order
    keys = [user_key(u) for u in ids]
    exposures = [(NAME, u, k, b, float(t)) for u, k, b, t in
                 zip(ids, keys, branches, exposed_at.tolist())]
    genders = np.where(rng.random(users) < 0.69, "f", "m").tolist()
    attributes = [(NAME, k, "gender", g, b) for k, g, b in zip(keys, genders, branches)]
    who = who[order].tolist()
    event_rows = list(zip((ids[i] for i in who), (keys[i] for i in who),
                          names[order].tolist(), values[order].tolist(), at[order].tolist(),
                          props[order].tolist()))
    return exposures, event_rows, attributes


def load_sqlite(path: str, exposures, events, attributes) -> None:
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO gl_experiment_exposures "
                     "(experiment, user_id, user_key, branch, at) VALUES (?, ?, ?, ?, ?)",
                     exposures)
    conn.executemany("INSERT INTO gl_experiment_events (user_id, user_key, name, value, at, "
                     "props) VALUES (?, ?, ?, ?, ?, ?)",
                     ((*row[:5], None if row[5] == "\\N" else row[5]) for row in events))
    conn.executemany("INSERT INTO gl_experiment_user_attributes (experiment, user_key, name, "
                     "value, branch) VALUES (?, ?, ?, ?, ?)", attributes)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(dbname: str, exposures, events, attributes) -> None:
    import psycopg2
    conn = psycopg2.connect(**{**PG_ADMIN, "dbname": dbname})
    with conn.cursor() as cur:
        for table, columns, rows in (
                ("gl_experiment_exposures", "(experiment, user_id, user_key, branch, at)",
                 exposures),
                ("gl_experiment_events", "(user_id, user_key, name, value, at, props)", events),
                ("gl_experiment_user_attributes", "(experiment, user_key, name, value, branch)",
                 attributes)):
            buffer = io.StringIO()
            buffer.writelines("\t".join(map(str, row)) + "\n" for row in rows)
            buffer.seek(0)
            cur.copy_expert(f"COPY {table} {columns} FROM STDIN", buffer)
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()


def time_results(store: ExperimentStore, label: str, runs: int = 3) -> dict:
    """Rebuild the running totals once (a bulk load bypasses them), then time results from the
    totals (the default) and from the raw join (what --since uses)."""
    started = time.perf_counter()
    store.rebuild_totals(NAME)
    print(f"  {label}: running totals rebuilt from raw rows in "
          f"{time.perf_counter() - started:.2f} s (one-off after a bulk load)")
    figures = {}
    for path, since in (("totals", None), ("raw join", 0.0)):
        best = float("inf")
        for run in range(runs if since is None else 1):
            wall = time.perf_counter()
            data = results(NAME, store=store, since=since)
            wall = time.perf_counter() - wall
            best = min(best, wall)
            if run == 0:
                purchase = next(m for m in data["metrics"] if m["metric"] == "purchase")
                vs = purchase["branches"][1]["vs_control"]
                print(f"  {label} ({path}): first {wall:.2f} s; exposed {data['exposed']}; "
                      f"purchase rate {vs['rate_difference'] * 100:+.2f} pts, "
                      f"p = {vs['rate_p_value']:.2g}")
        print(f"  {label} ({path}): best {best:.2f} s")
        figures[path] = best
    started = time.perf_counter()
    save_bucket(NAME, Bucket("client_login", {"gender": ("f",)},
                             (EventFilter("login", {"platform": "client"}),)), "bench",
                store=store)
    print(f"  {label}: bucket saved in {time.perf_counter() - started:.2f} s")
    for path, end, buckets in (("report all to now", 1e10, ["all"]),
                               ("report all to mid-range", MID, ["all"]),
                               ("report bucket to now", 1e10, ["client_login"]),
                               ("report bucket to mid-range", MID, ["client_login"])):
        wall = time.perf_counter()
        data = report(NAME, 0.0, end, buckets, store=store)
        wall = time.perf_counter() - wall
        users = {b["name"]: sum(b["users"].values()) for b in data["buckets"]}
        print(f"  {label} ({path}): {wall:.2f} s; users {users} (goal <= 2 s)")
        figures[path] = wall
    return figures


def time_writes(store: ExperimentStore, label: str, users: int, count: int = 50_000) -> None:
    """Write-path cost of the running totals: events for exposed users, in client batches."""
    rng = np.random.default_rng(2)
    rows = [(f"user-{i}", "login", 1.0, T0 + DAYS * 86400 + j) for j, i in
            enumerate(rng.integers(0, users, count).tolist())]
    started = time.perf_counter()
    for start in range(0, count, 5000):
        store.write_events(rows[start:start + 5000])
    elapsed = time.perf_counter() - started
    print(f"  {label}: write_events with totals folding {count / elapsed:,.0f} events/s "
          "(background writer, batches of 5,000)")


def bench_contention(postgres: bool) -> None:
    print("== contention: 20 processes, 30,000 exposures + 120,000 events over 20 s, "
          "store held 5 s twice")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/contention.sqlite", None)]
        if postgres:
            targets.append(("PostgreSQL", None, f"gl_exp_contention_{os.getpid()}"))
        for label, url, dbname in targets:
            admin = None
            if dbname:
                import psycopg2
                admin = psycopg2.connect(**PG_ADMIN)
                admin.autocommit = True
                with admin.cursor() as cur:
                    cur.execute(f'CREATE DATABASE "{dbname}"')
                url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}"
            try:
                started = time.perf_counter()
                spool = f"{tmp}/spool-{label}"
                exposed, counted = run_contention(url, spool)
                print(f"  {label}: {exposed:,} / 30,000 exposures and {counted:,} / 120,000 "
                      f"events counted ({30_000 - exposed:,} and {120_000 - counted:,} missing)"
                      f" in {time.perf_counter() - started:.0f} s")
                left = list(Path(spool).glob("*.spool")) if os.path.isdir(spool) else []
                if left:
                    next_start(url, spool)
                    store = ExperimentStore(url)
                    exposed, counted = counts(store)
                    store.dispose()
                    print(f"  {label}: {len(left)} app(s) shut down with rows in their spool; "
                          f"after the next start replayed them: {exposed:,} exposures, "
                          f"{counted:,} events")
            finally:
                if admin is not None:
                    with admin.cursor() as cur:
                        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                    admin.close()
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--assignment-only", action="store_true")
    parser.add_argument("--reports-only", action="store_true",
                        help="skip the assignment rates")
    parser.add_argument("--contention", action="store_true",
                        help="run the lost-data reproduction instead")
    args = parser.parse_args()

    if args.contention:
        bench_contention(not args.no_postgres)
        return

    if not args.reports_only:
        bench_assignment(args.users)
    if args.assignment_only:
        return

    print(f"== results for {args.users:,} exposures and {args.events:,} events")
    started = time.perf_counter()
    exposures, events, attributes = make_data(args.users, args.events)
    print(f"  generated data in {time.perf_counter() - started:.1f} s")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.sqlite")
        store = ExperimentStore(f"sqlite:///{path}")
        define(Experiment(NAME, {"enhanced": 0.5}, status="rollout", rollout_pct=100), "bench",
               store=store)
        started = time.perf_counter()
        load_sqlite(path, exposures, events, attributes)
        print(f"  SQLite: loaded in {time.perf_counter() - started:.1f} s")
        figures["sqlite"] = time_results(store, "SQLite")
        time_writes(store, "SQLite", args.users)
        store.dispose()
    if not args.no_postgres:
        import psycopg2
        dbname = f"gl_exp_bench_{os.getpid()}"
        admin = psycopg2.connect(**PG_ADMIN)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
        try:
            store = ExperimentStore(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}")
            define(Experiment(NAME, {"enhanced": 0.5}, status="rollout", rollout_pct=100),
                   "bench", store=store)
            started = time.perf_counter()
            load_postgres(dbname, exposures, events, attributes)
            print(f"  PostgreSQL: loaded in {time.perf_counter() - started:.1f} s")
            figures["postgresql"] = time_results(store, "PostgreSQL")
            time_writes(store, "PostgreSQL", args.users)
            store.dispose()
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            admin.close()
    print("== summary")
    for engine, paths in figures.items():
        goal = "  (goal <= 2 s)" if engine == "postgresql" else ""
        print(f"  results on {engine}: {paths['totals']:.2f} s from running totals{goal}; "
              f"{paths['raw join']:.2f} s by the raw join (--since)")
        print(f"  report on {engine}: bucket all {paths['report all to now']:.2f} s to now, "
              f"{paths['report all to mid-range']:.2f} s to mid-range; all + a bucket with "
              f"an attribute and an event filter {paths['report bucket to now']:.2f} s to now, "
              f"{paths['report bucket to mid-range']:.2f} s to mid-range (goal <= 2 s)")
    if len(figures) == 2:
        ratio = figures["sqlite"]["totals"] / figures["postgresql"]["totals"]
        print(f"  SQLite / PostgreSQL time ratio (totals): {ratio:.2f}")


if __name__ == "__main__":
    main()
