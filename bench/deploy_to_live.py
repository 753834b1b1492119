"""Deploy to live on 20 local demo hosts, canary window included, with demo traffic flowing.

Measures the deploy engine alone (the verify build before it is bench/push_to_verdict.py):
  1. a healthy commit: greenlight deploy → live on all 20 hosts (goal: push→live ≤ 60 s overall)
  2. a commit that breaks logins: time until the canary is rolled back (breakage fast path)
  3. the naive peer: copy + `ln -sfn` + restart host by host, no canary, no judge
Run: .venv/bin/python bench/deploy_to_live.py [--hosts 20] [--rate 20]
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenlight.deploy import demo_hosts as demo  # noqa: E402
from greenlight.deploy.canary_judge import judge_factory  # noqa: E402
from greenlight.deploy.health import check_health  # noqa: E402
from greenlight.deploy.hosts import DeploySettings, Host, demo_hosts  # noqa: E402
from greenlight.deploy.ledger import Ledger  # noqa: E402
from greenlight.deploy.phases import Deployer  # noqa: E402
from greenlight.deploy.releases import export_commit  # noqa: E402
from greenlight.deploy.traffic import generate_traffic  # noqa: E402


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def commit(repo, message):
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Bench", "-c", "user.email=b@x", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def naive_deploy(hosts, repo, sha, staging):
    """What a hand-rolled script does: export, then per host copy, ln -sfn, restart, check."""
    src = export_commit(str(repo), sha, str(staging))
    for h in hosts:
        dest = Path(h.path, "naive", sha)
        shutil.copytree(src, dest, dirs_exist_ok=True)
        subprocess.run(["ln", "-sfn", str(dest), str(Path(h.path, "current"))], check=True)
        demo.restart_host(h.path, h.port)
        check_health(h.health_url, 2.0, 40, 0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s per host")
    ap.add_argument("--window", type=float, default=60.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gl-deploy-bench-"))
    repo = tmp / "repo"
    shutil.copytree(ROOT / "examples" / "demo", repo,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    git(repo, "init", "-q", "-b", "main")
    v1 = commit(repo, "v1")
    ports = free_ports(args.hosts)
    hosts = [Host(**{**h.__dict__, "port": p, "health_url": f"http://127.0.0.1:{p}/health",
                     "metrics_url": f"http://127.0.0.1:{p}/metrics"})
             for h, p in zip(demo_hosts(str(tmp / "hosts"), args.hosts, 1), ports)]
    settings = DeploySettings(hosts=hosts, repo=str(repo), ledger_url=f"sqlite:///{tmp}/l.db",
                              state_dir=str(tmp / "state"), observe_seconds=args.window,
                              health_interval=0.05, final_observe_seconds=2.0, parallel=8)
    ledger = Ledger(settings.ledger_url)
    stop = threading.Event()
    try:
        t0 = time.monotonic()
        first = Deployer(settings, ledger).deploy(v1, trigger="bench")
        print(f"first deploy (no canary) to {args.hosts} hosts: "
              f"{time.monotonic() - t0:.1f} s [{first.outcome}]")
        traffic = threading.Thread(target=generate_traffic, daemon=True, kwargs=dict(
            urls=[f"http://127.0.0.1:{p}" for p in ports], rate=args.rate, duration_s=3600,
            max_requests=10**7, seed=1, timeout=1.0, stop=stop))
        traffic.start()
        time.sleep(3)

        (repo / "CHANGES").write_text("a harmless change\n")
        v2 = commit(repo, "v2 healthy")
        t0 = time.monotonic()
        ok = Deployer(settings, ledger, judge_factory(settings)).deploy(v2, trigger="bench")
        healthy_s = time.monotonic() - t0
        print(f"healthy commit live on all {args.hosts} hosts: {healthy_s:.1f} s "
              f"[{ok.outcome}] (goal within 60 s)")
        for p in ok.phases:
            print(f"    {p.name:8} {p.finished_at - p.started_at:6.2f} s  {p.summary[:70]}")

        logic = repo / "app" / "logic.py"
        logic.write_text(logic.read_text().replace(
            "    def login(self, user: str) -> str:\n",
            "    def login(self, user: str) -> str:\n        raise UnknownUser(user)\n", 1))
        v3 = commit(repo, "v3 breaks logins")
        t0 = time.monotonic()
        bad = Deployer(settings, ledger, judge_factory(settings)).deploy(v3, trigger="bench")
        judge = next((p for p in bad.phases if p.name == "judge"), None)
        print(f"broken-logins commit: {bad.outcome} after {time.monotonic() - t0:.1f} s; "
              f"judge decided in {judge.finished_at - judge.started_at:.1f} s")

        stop.set()
        (repo / "CHANGES").write_text("another change\n")
        v4 = commit(repo, "v4 for the naive peer")
        t0 = time.monotonic()
        naive_deploy(hosts, repo, v4, tmp / "naive-staging")
        naive_s = time.monotonic() - t0
        print(f"naive peer (copy + ln -sfn + restart, serial, no canary) to {args.hosts} "
              f"hosts: {naive_s:.1f} s")
        switch_s = sum(p.finished_at - p.started_at for p in ok.phases
                       if p.name in ("prepare", "canary", "rest"))
        print(f"ratio greenlight switching work (prepare+canary+rest) / naive: "
              f"{switch_s / naive_s:.2f}")
    finally:
        stop.set()
        demo.stop_demo_hosts(tmp / "hosts")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
