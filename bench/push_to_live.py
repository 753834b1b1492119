"""Push → live on every demo host, through the whole pipeline, demo window included.

A real world (Buildbot master, two workers, 20 local demo hosts with demo traffic, the demo's
default deploy settings: 5% canary, 60 s observe window, fail-safe judge) takes a few healthy
pushes; for each, the time from `git push` until all hosts serve the new commit, split into
verify build, wait and deploy build. Goal: median ≤ 60 s.
Peer, measured in the same run on the same hosts: the naive post-receive deploy (export, copy,
`ln -sfn`, restart host by host, no tests, no canary).
Run: .venv/bin/python bench/push_to_live.py [--hosts 20] [--pushes 3] [--rate R]
                                         [--set parallel=10 ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenlight.deploy import demo_hosts as demo  # noqa: E402
from greenlight.deploy.health import check_health  # noqa: E402
from greenlight.deploy.hosts import KEYS, DeploySettings  # noqa: E402
from greenlight.deploy.releases import export_commit  # noqa: E402
from greenlight import settings as settings_mod  # noqa: E402
from tests.conftest import free_ports  # noqa: E402
from tests.world import World, commit_all  # noqa: E402


def serving(host_dir: Path) -> str | None:
    pid = demo.read_pid(host_dir)
    if pid is None:
        return None
    try:
        return Path(f"/proc/{pid}/cwd").resolve().name
    except OSError:
        return None


def wait_live(hosts: list[Path], ports: list[int], sha: str, timeout: float) -> float:
    """Monotonic time at which every host serves ``sha`` and answers /health."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(serving(h) == sha for h in hosts):
            try:
                check_health_all(ports)
                return time.monotonic()
            except RuntimeError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"{sha[:12]} not live on all hosts within {timeout:.0f} s")


def check_health_all(ports: list[int]) -> None:
    for port in ports:
        if not check_health(f"http://127.0.0.1:{port}/health", 1.0, 1, 0.0).healthy:
            raise RuntimeError(port)


def deploy_build(world: World, sha: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = world.api("builders/deploy/builds", property="*", complete="true")["builds"]
        for build in builds:
            if build["properties"].get("revision", [None])[0] == sha:
                return build
        time.sleep(0.3)
    raise RuntimeError(f"no deploy build of {sha[:12]}")


def phase_times(world: World, build: dict) -> str:
    """``name seconds`` per deploy phase, from the deploy step's result.json log."""
    import json


    steps = world.api(f"builds/{build['buildid']}/steps")["steps"]
    step = next(s for s in steps if s["name"] == "deploy")
    logs = world.api(f"steps/{step['stepid']}/logs")["logs"]
    log = next((entry for entry in logs if entry["name"] == "result.json"), None)
    if log is None:
        return "no result.json"
    raw = world.rest_get(f"logs/{log['logid']}/raw").text
    result = json.loads(raw)
    phases = result.get("phases", [])
    if not phases:
        return "no phases"
    before = phases[0]["started_at"] - step["started_at"]
    after = step["complete_at"] - phases[-1]["finished_at"]
    return ", ".join([f"start-up {before:.1f}"]
                     + [f"{p['name']} {p['finished_at'] - p['started_at']:.1f}" for p in phases]
                     + [f"exit {after:.1f}"])


def rest_breakdown(world: World, build: dict) -> str:
    """Where the rest phase's hosts spent their time, from the ledger's ``up`` events (medians
    and maxima over its hosts, seconds): ledger write-ahead, switch, restart command, health
    wait (tries), host release record; and how long the phase's hosts took from the first
    switch to the last up."""
    from greenlight.deploy.ledger import Ledger

    deploy_id = build["properties"].get("deploy_id", [None])[0]
    if deploy_id is None:
        return "no deploy id"
    ledger = Ledger(DeploySettings.from_section(world.settings).ledger_url)
    events = ledger.deploy(int(deploy_id)).events
    ups = [e.data for e in events if e.phase == "up" and (e.data or {}).get("phase") == "rest"]
    if not ups or "health_s" not in ups[0]:
        return "no timings in the ledger"
    moves = [e.at for e in events if e.phase in ("switch", "up")
             and (e.data or {}).get("phase") == "rest"]
    parts = [f"{len(ups)} hosts in {(max(moves) - min(moves)).total_seconds():.1f} s"]
    for key in ("ledger_s", "switch_s", "restart_s", "health_s", "record_s", "health_tries"):
        values = [float(u[key]) for u in ups]
        parts.append(f"{key} {statistics.median(values):.2f}/{max(values):.2f}")
    return ", ".join(parts) + " (median/max per host)"


def naive_deploy(bare: Path, sha: str, hosts: list[Path], ports: list[int], tmp: Path) -> None:
    """What a hand-rolled post-receive hook does: export, then per host copy, ln, restart."""
    src = export_commit(str(bare), sha, str(tmp / "naive-staging"))
    for host, port in zip(hosts, ports):
        dest = host / "naive" / sha
        shutil.copytree(src, dest, dirs_exist_ok=True)
        subprocess.run(["ln", "-sfn", str(dest), str(host / "current")], check=True)
        demo.restart_host(host, port)
        if not check_health(f"http://127.0.0.1:{port}/health", 2.0, 40, 0.05).healthy:
            raise RuntimeError(f"naive deploy: {host.name} unhealthy")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--pushes", type=int, default=3)
    ap.add_argument("--rate", type=float, default=None,
                    help="demo traffic, requests/s per host (default: the settings' default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra [deploy] setting (TOML value), e.g. --set parallel=10")
    args = ap.parse_args()
    if args.rate is None:
        args.rate = KEYS["demo_traffic_rate"].default
    tmp = Path(tempfile.mkdtemp(prefix="gl-push-live-"))
    first = free_ports(args.hosts, contiguous=True)[0]
    extra = "".join(f"{item.split('=', 1)[0].strip()} = {item.split('=', 1)[1].strip()}\n"
                    for item in args.set)
    # The product's defaults, [shards] count = "auto" included (test worlds default to 1).
    world = World(tmp / "world", shards="auto", extra=f"demo_first_port = {first}\n"
                                        f"demo_traffic_rate = {args.rate:g}\n{extra}")
    text = world.settings_file.read_text().replace("demo_hosts = 0\n",
                                                   f"demo_hosts = {args.hosts}\n")
    world.settings_file.write_text(text)
    world.settings = settings_mod.load(world.settings_file)
    hosts = [world.settings.state_dir / "hosts" / f"host{i:02d}"
             for i in range(1, args.hosts + 1)]
    ports = list(range(first, first + args.hosts))
    deploy = DeploySettings.from_section(world.settings)
    print(f"world: {args.hosts} demo hosts, canary {deploy.canary_fraction:.0%}, observe "
          f"window {deploy.observe_seconds:g} s (on_window_end={deploy.on_window_end}), "
          f"traffic {args.rate:g} req/s per host; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs; parallel {deploy.parallel}")
    try:
        t0 = time.monotonic()
        world.up()
        print(f"greenlight up (master, workers, first deploy to all hosts): "
              f"{time.monotonic() - t0:.1f} s")
        clone = world.clone(tmp / "clone")
        time.sleep(5)  # let the first commit's own verify → deploy (a no-op) pass
        totals = []
        for i in range(args.pushes):
            (clone / "CHANGES").write_text(f"change {i}\n")
            sha = commit_all(clone, f"bench change {i}")
            t0 = time.monotonic()
            assert world.push(clone, "main").returncode == 0
            live_at = wait_live(hosts, ports, sha, timeout=400) - t0
            verify = world.wait_build(sha)
            build = deploy_build(world, sha)
            verify_s = verify["complete_at"] - verify["started_at"]
            deploy_s = build["complete_at"] - build["started_at"]
            wait_s = build["started_at"] - verify["complete_at"]
            outcome = build["properties"].get("deploy_outcome", ["?"])[0]
            props = world.api(f"builds/{verify['buildid']}/properties")["properties"]
            count = (props[0] if props else {}).get("shard_count", [1])[0]
            totals.append(live_at)
            print(f"push {i + 1}: live on all {args.hosts} hosts after {live_at:5.1f} s "
                  f"(verify build {verify_s:.0f} s with {count} shard(s), queue {wait_s:.0f} s, "
                  f"deploy build {deploy_s:.0f} s [{outcome}])")
            print(f"    deploy phases (s): {phase_times(world, build)}")
            print(f"    rest phase: {rest_breakdown(world, build)}; load average "
                  f"{os.getloadavg()[0]:.1f}")
        median = statistics.median(totals)
        print(f"push → live, median of {len(totals)}: {median:.1f} s "
              f"(goal ≤ 60 s: {'met' if median <= 60 else 'MISSED'}); load average now "
              f"{os.getloadavg()[0]:.1f}")
        world.greenlight("down")  # traffic and hosts stop; the naive peer restarts them itself
        (clone / "CHANGES").write_text("naive\n")
        sha = commit_all(clone, "naive peer")
        subprocess.run(["git", "push", "-q", str(world.bare), "HEAD:refs/heads/naive"],
                       cwd=clone, check=True, capture_output=True)
        t0 = time.monotonic()
        naive_deploy(world.bare, sha, hosts, ports, tmp)
        naive_s = time.monotonic() - t0
        print(f"naive peer (export, copy, ln -sfn, restart, serial; no tests, no canary): "
              f"{naive_s:.1f} s; ratio greenlight push→live / naive = {median / naive_s:.1f}")
    finally:
        world.down()
        demo.stop_demo_hosts(world.settings.state_dir / "hosts")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
