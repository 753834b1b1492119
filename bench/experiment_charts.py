"""What the experiment results page's charts cost: the results read, the reads over time
(one report query each) on the first view, and a second view that finds them kept.

    .venv/bin/python bench/experiment_charts.py [USERS]

A fresh SQLite store with USERS users over one day (half per branch), 20% with a purchase,
50% with a login; prints seconds per step.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time

from greenlight.experiments import ROLLOUT, Experiment, ExperimentStore, results
from greenlight.experiments.timeline import READS
from greenlight.www.experiment_charts import reads_with_history


def main(users: int) -> None:
    store = ExperimentStore(f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite")
    store.define(Experiment("Big", {"b": 0.5}, status=ROLLOUT, rollout_pct=100), "bench")
    start, rng = time.time() - 86400, random.Random(1)
    rows = [(f"u{i}", "b" if i % 2 else "control", start + i * 86400 / users)
            for i in range(users)]
    store.write_exposures([("Big", u, b, at) for u, b, at in rows])
    store.write_events([(u, "purchase", 5.0, at + 60) for u, _, at in rows
                        if rng.random() < 0.2])
    store.write_events([(u, "login", 1.0, at + 30) for u, _, at in rows if rng.random() < 0.5])
    for view in (1, 2):
        began = time.perf_counter()
        data = results("Big", store=store)
        read = time.perf_counter()
        reads_with_history(store, "Big", data)
        done = time.perf_counter()
        print(f"{users:,} users, view {view}: results {read - began:.3f} s, "
              f"{READS} reads over time {done - read:.3f} s")
    store.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
