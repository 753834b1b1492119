"""CPU the demo's traffic costs: 20 demo hosts serving the demo app, the traffic generator
between deploys (idle rate) and while a deploy holds the lock (full rate), as `make up` runs
it. Prints CPU seconds per wall second of the generator and of the hosts, per phase.

    .venv/bin/python bench/demo_traffic.py [--hosts 20] [--seconds 30] [--rate 40] [--idle 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from greenlight.deploy import demo_hosts as demo  # noqa: E402
from greenlight.deploy.health import check_health  # noqa: E402
from greenlight.deploy.lock import DeployLock  # noqa: E402
from tests.conftest import free_ports  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure(pids: dict[str, list[int]], seconds: float) -> dict[str, float]:
    before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
    time.sleep(seconds)
    return {k: (sum(cpu_seconds(p) for p in v) - before[k]) / seconds for k, v in pids.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=40)
    ap.add_argument("--idle", type=float, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gl-traffic-"))
    ports = free_ports(args.hosts)
    hosts = []
    print(f"load average {os.getloadavg()} on {os.cpu_count()} CPUs; {args.hosts} demo hosts, "
          f"{args.seconds:g} s per phase")
    try:
        for i, port in enumerate(ports):
            host = tmp / f"host{i + 1:02d}"
            release = host / "releases" / ("0" * 40)
            shutil.copytree(ROOT / "examples" / "demo", release,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
            (host / "current").symlink_to(release.relative_to(host))
            demo.start_host(host, port)
            hosts.append((host, port))
        for host, port in hosts:
            assert check_health(f"http://127.0.0.1:{port}/health", 2, 120, 0.25).healthy, host
        lock_file = tmp / "deploy.lock"
        lock_file.touch()
        generator = subprocess.Popen(
            [sys.executable, "-m", "greenlight.deploy.demo_traffic", "--lock", str(lock_file),
             "--rate", str(args.rate), "--idle-rate", str(args.idle), "--duration", "3600",
             *[f"http://127.0.0.1:{p}" for _, p in hosts]],
            stdout=subprocess.DEVNULL, cwd=ROOT)
        pids = {"generator": [generator.pid],
                "hosts": [demo.read_pid(h) for h, _ in hosts]}
        time.sleep(3)
        idle = measure(pids, args.seconds)
        with DeployLock(str(lock_file)):
            time.sleep(2)
            busy = measure(pids, args.seconds)
        generator.terminate()
        generator.wait(10)
        for name, figures in (("between deploys", idle), ("deploy running", busy)):
            rate = args.idle if name == "between deploys" else args.rate
            print(f"{name:16} {rate:g} req/s per host: generator {figures['generator']:.2f} "
                  f"CPU, hosts {figures['hosts']:.2f} CPU (CPU-seconds per second)")
        print(f"load average {os.getloadavg()}")
    finally:
        for host, _ in hosts:
            demo.stop_host(host)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
