"""Push-to-verdict overhead: median time from `git push` returning to the build's completion,
minus the test step's own duration, over N small commits pushed one after another.

    .venv/bin/python bench/push_to_verdict.py [--commits 8]

Runs a real master and workers (its own ports and folders, like the end-to-end tests).
Buildbot stores step times in whole seconds, so each overhead figure is ±1 s; the median over
N pushes is what the goal (≤ 10 s on a 2-core machine) is about.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.world import World, commit_all  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        world = World(base / "world")
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
                test_step = next(s for s in steps if s["name"] == "tests")
                test_seconds = test_step["complete_at"] - test_step["started_at"]
                total = done - pushed
                totals.append(total)
                tests.append(test_seconds)
                overheads.append(total - test_seconds)
                print(f"push {i}: verdict {'green' if build['results'] == 0 else 'red'} "
                      f"after {total:.1f}s (test step {test_seconds}s) "
                      f"overhead {total - test_seconds:.1f}s", flush=True)
        finally:
            world.down()
    print(f"\npush → verdict, median of {args.commits}: {statistics.median(totals):.1f}s total, "
          f"{statistics.median(tests):.1f}s test step, "
          f"{statistics.median(overheads):.1f}s pipeline overhead (goal ≤ 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
