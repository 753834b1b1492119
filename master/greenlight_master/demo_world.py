"""The demo's production: local demo hosts serving the app, and traffic so metrics move.

``greenlight up`` calls ``up``: it starts ``[deploy] demo_hosts`` local hosts under
``{state_dir}/hosts`` (ports from ``demo_first_port``), puts the head of the deploy branch live
on them when they serve nothing yet (the first deploy goes to all hosts at once), and starts a
bounded traffic generator (loopback only, ``demo_traffic_idle_rate`` requests/s per host
between deploys and ``demo_traffic_rate`` while one runs, for at most
``demo_traffic_seconds``). ``down`` stops the traffic and the hosts. Both can run again safely.
Settings that name real hosts (``[[deploy.hosts]]``) or turn deploys off have no demo world.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from greenlight.deploy import demo_hosts
from greenlight.deploy.health import check_health
from greenlight.deploy.hosts import DeploySettings, Host
from greenlight.git.repos import remote_branch_sha
from greenlight.settings import Settings

TRAFFIC_PID = "traffic.pid"
TRAFFIC_LOG = "traffic.log"
TRAFFIC_MAX_REQUESTS = 50_000_000  # the duration bounds it first; this bounds a runaway rate
FIRST_DEPLOY_TIMEOUT = 600


def hosts_dir(settings: Settings) -> Path:
    return settings.state_dir / "hosts"


def _wanted(deploy: DeploySettings) -> int:
    return len(deploy.hosts) if deploy.demo and deploy.enabled else 0


def _bin(name: str) -> str:
    script = Path(sys.executable).parent / name
    return str(script) if script.exists() else name


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    if settings.source != "<defaults>":
        env["GREENLIGHT_SETTINGS"] = str(Path(settings.source).resolve())
    return env


def branch_head(settings: Settings) -> str | None:
    """The sha at the tip of the deploy branch of the watched repository (None: no branch)."""
    return remote_branch_sha(settings.repo_url, settings["repository"]["deploy_branch"])


def first_deploy(settings: Settings, sha: str, report) -> bool:
    """``greenlight deploy SHA`` onto the fresh hosts (the engine sends it to all at once)."""
    proc = subprocess.run(
        [_bin("greenlight"), "deploy", sha, "--json", "--trigger", "greenlight-up",
         "--branch", settings["repository"]["deploy_branch"]],
        env=_env(settings), capture_output=True, text=True, timeout=FIRST_DEPLOY_TIMEOUT)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"outcome": "failed", "message": (proc.stderr or proc.stdout).strip()[-500:]}
    report.say(f"first deploy of {sha[:12]} to the demo hosts: {result.get('outcome')}"
               + (f" ({result.get('message')})" if proc.returncode else ""))
    return proc.returncode == 0


def _serving(host: Host) -> str | None:
    """The release a host's server was started from, or None when it does not answer (a
    server just started gets a few seconds to come up)."""
    if not Path(host.path, "current").exists():
        return None
    if not check_health(host.health_url, timeout=2.0, retries=60, interval=0.25).healthy:
        return None
    return demo_hosts.served_release(host.path)  # None: something else answers on its port


def _traffic_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"greenlight.deploy.demo_traffic" in cmdline


def start_traffic(settings: Settings, deploy: DeploySettings, hosts: list[Host],
                  report) -> None:
    """Start the demo traffic (calm between deploys, full while one runs) and say how to
    stop it."""
    pidfile = settings.state_dir / TRAFFIC_PID
    if not (deploy.demo_traffic_rate or deploy.demo_traffic_idle_rate) or not hosts:
        return
    if _traffic_alive(pidfile):
        report.say("demo traffic already running")
        return
    urls = [f"http://127.0.0.1:{h.port}" for h in hosts]
    seconds = deploy.demo_traffic_seconds
    with open(settings.state_dir / TRAFFIC_LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "greenlight.deploy.demo_traffic", "--lock", deploy.lock_file,
             "--rate", str(deploy.demo_traffic_rate),
             "--idle-rate", str(deploy.demo_traffic_idle_rate), "--duration", str(seconds),
             "--max-requests", str(TRAFFIC_MAX_REQUESTS), *urls],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    temp = pidfile.with_name(f".{TRAFFIC_PID}.tmp")
    temp.write_text(f"{proc.pid}\n")
    temp.replace(pidfile)
    report.say(f"demo traffic: {deploy.demo_traffic_idle_rate:g} requests/s per host between "
               f"deploys, {deploy.demo_traffic_rate:g} while one runs, for up to "
               f"{seconds / 3600:g} h (pid {proc.pid}); stop it with `kill {proc.pid}` or "
               "`.venv/bin/greenlight down`, or set [deploy] demo_traffic_rate and "
               "demo_traffic_idle_rate")
    report.say(f"  (log: {settings.state_dir / TRAFFIC_LOG})")


def stop_traffic(settings: Settings, report, grace: float = 5.0) -> None:
    """SIGTERM the generator named in the pid file (only if it is one), SIGKILL after ``grace``."""
    pidfile = settings.state_dir / TRAFFIC_PID
    if _traffic_alive(pidfile):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _traffic_alive(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _traffic_alive(pidfile):
            os.kill(pid, signal.SIGKILL)
        report.say("demo traffic stopped")
    pidfile.unlink(missing_ok=True)


def up(settings: Settings, report) -> list[Host]:
    deploy = DeploySettings.from_section(settings)
    count = _wanted(deploy)
    if not count:
        return []
    hosts = demo_hosts.start_demo_hosts(hosts_dir(settings), count, deploy.demo_first_port)
    fresh = [h for h in hosts if not Path(h.path, "current").exists()]
    if fresh:
        sha = branch_head(settings)
        if sha is None:
            report.say(f"demo hosts: the branch {settings['repository']['deploy_branch']} has "
                       "no commit yet; they start with its first green build")
        else:
            first_deploy(settings, sha, report)
    serving = {h.name: _serving(h) for h in hosts}
    down_hosts = [h for h in hosts if serving[h.name] is None]
    start_traffic(settings, deploy, [h for h in hosts if serving[h.name]], report)
    report.say(f"Demo hosts ({count - len(down_hosts)} of {count} serving):")
    for host in hosts:
        release = serving[host.name]
        state = (f"release {release[:12]}" if release
                 else f"NOT serving (port in use? see {host.path}/server.log)")
        report.say(f"  {host.name}  http://127.0.0.1:{host.port}/  {state}")
    return hosts


def down(settings: Settings, report) -> None:
    stop_traffic(settings, report)
    stopped = demo_hosts.stop_demo_hosts(hosts_dir(settings))
    if stopped:
        report.say(f"{stopped} demo host(s) stopped")
