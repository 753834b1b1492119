"""Benchmark of shard planning on a real test suite the project does not own (attrs).

    .venv/bin/python bench/sharding.py [--keep DIR] [--package attrs==25.4.0]

Downloads the attrs source distribution (it ships its tests), installs it with pytest into a
temporary virtualenv, runs the suite serially once with --junitxml to record durations, then:
  * plans N = 2, 4, 8 with our planner and with pytest-split's least_duration and
    duration_based_chunks on the same durations, printing predicted makespan / ideal
    (ideal = total/N, or the longest test if larger);
  * runs 4 shards of our plan as 4 parallel pytest processes (our pytest plugin, --shard-plan)
    and prints their wall time against the serial run's, with predicted vs actual per shard.
Goal: makespan/ideal <= 1.05 at N=4 and never worse than pytest-split.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from greenlight.shards.junit import parse_junit_file  # noqa: E402
from greenlight.shards.planner import ideal_makespan, plan_shards  # noqa: E402
from pytest_split.algorithms import Algorithms  # noqa: E402

# Pinned so every run measures the same suite with the same tools.
TARGET = "attrs==25.4.0"
TEST_DEPS = ["pytest==8.4.2", "hypothesis==6.170.15", "pympler==1.1", "cloudpickle==3.1.1"]


class _Item:
    """What pytest-split's algorithms read from a pytest item."""

    def __init__(self, nodeid: str):
        self.nodeid = nodeid

    def __str__(self) -> str:
        return self.nodeid


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def prepare(work: Path, target: str) -> tuple[Path, Path]:
    """Download + unpack the sdist, make a venv with it and pytest; returns (python, srcdir)."""
    dl = work / "dl"
    dl.mkdir(exist_ok=True)
    print(f"downloading {target} (sdist) ...", flush=True)
    run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
         target, "-d", str(dl)])
    sdist = next(dl.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    src = work / sdist.name[:-len(".tar.gz")]
    venv = work / "venv"
    print("making a virtualenv and installing the package and its test deps ...", flush=True)
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(src), *TEST_DEPS])
    return python, src


def pytest_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # The plugin is imported from this checkout; it needs only pytest and the stdlib.
    env["PYTHONPATH"] = str(ROOT / "plugins")
    return env


def pytest_cmd(python: Path, *args: str) -> list[str]:
    return [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            *args]


def serial_run(python: Path, src: Path, junit: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run(pytest_cmd(python, f"--junitxml={junit}"), cwd=src,
                          env=pytest_env(), capture_output=True, text=True)
    elapsed = time.monotonic() - started
    lines = proc.stdout.strip().splitlines()
    print(f"serial run: exit {proc.returncode}, {lines[-1] if lines else proc.stderr[-500:]}")
    for line in lines:
        if line.startswith("FAILED "):
            print(f"  (the upstream suite itself: {line})")
    return elapsed


def compare_plans(ids: list[str], durations: dict[str, float]) -> dict[int, object]:
    items = [_Item(t) for t in ids]
    plans = {}
    print(f"\n{len(ids)} tests, total {sum(durations.values()):.2f} s, longest "
          f"{max(durations.values()):.3f} s")
    print(f"{'N':>3} {'ideal s':>9} | {'ours':>8} {'least_duration':>15} {'dur_chunks':>11}"
          f" | {'ours/ld':>8} | plan ms")
    for n in (2, 4, 8):
        started = time.perf_counter()
        plan = plan_shards(ids, durations, n)
        ms = (time.perf_counter() - started) * 1000
        plans[n] = plan
        ideal = ideal_makespan(list(plan.durations_used.values()), n)
        # Score every plan with the same weights (ours floors 0.000 s JUnit times at 1 ms).
        w = plan.durations_used
        ours = max(sum(w[t] for t in s.tests) for s in plan.shards)
        least = max(sum(w[i.nodeid] for i in g.selected)
                    for g in Algorithms.least_duration.value(n, items, w))
        chunks = max(sum(w[i.nodeid] for i in g.selected)
                     for g in Algorithms.duration_based_chunks.value(n, items, w))
        print(f"{n:>3} {ideal:>9.3f} | {ours / ideal:>8.4f} {least / ideal:>15.4f} "
              f"{chunks / ideal:>11.4f} | {ours / least:>8.4f} | {ms:.1f}")
        grouped = plan_shards(ids, durations, n, group_by_module=True)
        print(f"    ours with --group-by-module (no pytest-split equivalent): "
              f"{grouped.makespan / ideal:.4f} of the per-test ideal, "
              f"{grouped.makespan / grouped.ideal_seconds:.4f} of its own (largest module)")
    return plans


def planner_scale() -> None:
    """Planning time on a synthetic suite far larger than attrs (log-normal test times)."""
    import random
    rng = random.Random(2)
    for n, shards in ((20_000, 16), (50_000, 32)):
        ids = [f"tests/test_{i % 300}.py::test_{i}" for i in range(n)]
        durations = {t: rng.lognormvariate(-4, 1.5) for t in ids}
        started = time.perf_counter()
        plan = plan_shards(ids, durations, shards)
        elapsed = time.perf_counter() - started
        print(f"synthetic {n} tests, N={shards}: planned in {elapsed:.2f} s, makespan/ideal "
              f"{plan.makespan / plan.ideal_seconds:.6f}")


def shard_argv(python: Path, plan_file: Path, work: Path, i: int) -> list[str]:
    return pytest_cmd(python, "-p", "greenlight.shards.pytest_plugin", f"--shard={i}/4",
                      f"--shard-plan={plan_file}", f"--shard-report={work}/shard{i}.json")


def shards_one_at_a_time(python: Path, src: Path, plan, work: Path) -> list[float]:
    """Each shard alone: its wall time is what it takes with a free core (or worker) of its own."""
    plan_file = work / "plan4.json"
    plan_file.write_text(json.dumps(plan.to_json()))
    walls = []
    for i in range(1, 5):
        started = time.monotonic()
        subprocess.run(shard_argv(python, plan_file, work, i), cwd=src, env=pytest_env(),
                       capture_output=True)
        walls.append(time.monotonic() - started)
    return walls


def parallel_shards(python: Path, src: Path, plan,
                    work: Path) -> tuple[float, list[float], list[float]]:
    plan_file = work / "plan4.json"
    plan_file.write_text(json.dumps(plan.to_json()))
    started = time.monotonic()
    procs = []
    for i in range(1, 5):
        procs.append(subprocess.Popen(shard_argv(python, plan_file, work, i), cwd=src,
                                      env=pytest_env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
    ends = [0.0] * 4
    pending = set(range(4))
    while pending:
        for k in list(pending):
            if procs[k].poll() is not None:
                ends[k] = time.monotonic() - started
                pending.discard(k)
        time.sleep(0.01)
    wall = max(ends)
    executed, test_time = [], []
    for i in range(1, 5):
        report = json.loads((work / f"shard{i}.json").read_text())
        executed += list(report["results"])
        test_time.append(sum(r["seconds"] for r in report["results"].values()))
    print(f"union check: {len(executed)} executed, {len(set(executed))} distinct, "
          f"{len(plan.durations_used)} planned")
    return wall, ends, test_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default=TARGET)
    parser.add_argument("--keep", help="work in this folder and keep it (reuses a prior setup)")
    args = parser.parse_args()
    tmp = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="greenlight-bench-")
        work = Path(tmp.name)
    try:
        python = work / "venv" / "bin" / "python"
        srcs = [p for p in work.glob("*-*") if (p / "tests").is_dir()]
        if python.exists() and srcs:
            src = srcs[0]
        else:
            python, src = prepare(work, args.package)
        junit = work / "serial.xml"
        serial = serial_run(python, src, junit)
        results = parse_junit_file(junit, rootdir=src)
        ids = [r.test_id for r in results]
        durations = {r.test_id: r.seconds for r in results}
        plans = compare_plans(ids, durations)
        planner_scale()
        print(f"\nmeasured on {os.cpu_count()} cores:")
        print(f"load average before the parallel run: {os.getloadavg()[0]:.2f}")
        wall, ends, test_time = parallel_shards(python, src, plans[4], work)
        predicted = [s.predicted_seconds for s in plans[4].shards]
        print("per shard: predicted test s / measured test s / wall s: " + ", ".join(
            f"{p:.2f}/{t:.2f}/{e:.2f}" for p, t, e in zip(predicted, test_time, ends)))
        print(f"measured balance: slowest shard's test time / mean = "
              f"{max(test_time) / (sum(test_time) / 4):.3f} (1.000 = perfect)")
        print(f"serial wall {serial:.2f} s; 4 parallel shards wall {wall:.2f} s; "
              f"speedup {serial / wall:.2f}x (bounded by the core count and per-process "
              "pytest start-up + collection)")
        started = time.monotonic()
        subprocess.run(pytest_cmd(python, "--collect-only"), cwd=src, env=pytest_env(),
                       capture_output=True)
        print(f"pytest start-up + collection alone: {time.monotonic() - started:.2f} s "
              "(paid once per shard)")
        alone = shards_one_at_a_time(python, src, plans[4], work)
        print("each shard run alone, wall s: " + ", ".join(f"{a:.2f}" for a in alone)
              + f"; slowest {max(alone):.2f} s = the wall time with one free core or worker per "
              f"shard, {serial / max(alone):.2f}x faster than serial")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
