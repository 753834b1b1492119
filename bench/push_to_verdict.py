"""Push-to-verdict overhead: median time from `git push` returning to the build's completion,
minus the test step's own duration, over N small commits pushed one after another.

    .venv/bin/python bench/push_to_verdict.py [--commits 8] [--shards auto|N]

Runs a real master and workers (its own ports and folders, like the end-to-end tests), two
workers and ``[shards] count = "auto"`` as the demo; ``--shards 2`` forces the fan-out, ``1``
turns it off. With a fan-out the "test step" is the ``shards`` step (the shard builds).
Buildbot stores step times in whole seconds, so each overhead figure is ±1 s; the median over
N pushes is what the goal (≤ 10 s on a 2-core machine) is about.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.world import World, commit_all  # noqa: E402

SKIPPED = 3  # Buildbot's result code of a step a build did not take


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=8)
    parser.add_argument("--shards", default="auto",
                        help='[shards] count: "auto" (the default) or a whole number')
    args = parser.parse_args()
    shards = args.shards if args.shards == "auto" else int(args.shards)
    print(f"[shards] count = {shards}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        world = World(base / "world", shards=shards)
        world.up()
        try:
            clone = world.clone(base / "clone")
            # Warm-up push: builds the worker's cached venv once, as any first build would.
            (clone / "WARMUP").write_text("warm\n")
            warm = commit_all(clone, "warm-up")
            world.push(clone, "main")
            world.wait_build(warm, timeout=600)
            overheads, totals, tests = [], [], []
            for i in range(args.commits):
                (clone / "app" / f"bench_{i}.py").write_text(f"VALUE_{i} = {i}\n")
                (clone / "tests" / f"test_bench_{i}.py").write_text(
                    f"from app.bench_{i} import VALUE_{i}\n\n"
                    f"def test_value():\n    assert VALUE_{i} == {i}\n")
                sha = commit_all(clone, f"bench commit {i}")
                world.push(clone, "main")
                pushed = time.time()
                build = world.wait_build(sha, timeout=600)
                done = time.time()
                steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
                test_step = next(s for s in steps if s["name"] in ("tests", "shards")
                                 and s["started_at"] and s["results"] != SKIPPED)
                test_seconds = test_step["complete_at"] - test_step["started_at"]
                total = done - pushed
                totals.append(total)
                tests.append(test_seconds)
                overheads.append(total - test_seconds)
                print(f"push {i}: verdict {'green' if build['results'] == 0 else 'red'} "
                      f"after {total:.1f}s ({test_step['name']} step {test_seconds}s) "
                      f"overhead {total - test_seconds:.1f}s", flush=True)
        finally:
            world.down()
    print(f"\npush → verdict, median of {args.commits}: {statistics.median(totals):.1f}s total, "
          f"{statistics.median(tests):.1f}s test step, "
          f"{statistics.median(overheads):.1f}s pipeline overhead (goal ≤ 10 s); load "
          f"average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
