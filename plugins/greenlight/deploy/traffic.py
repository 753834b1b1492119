"""A small, bounded traffic generator for the demo hosts, so their metrics move.

It only ever talks to loopback hosts (127.0.0.0/8, localhost, ::1), stops after ``duration_s``
seconds or ``max_requests`` requests, whichever comes first, and sends at most ``rate``
requests per second per host. Each host gets its own thread and its own pool of registered
users; a login answered 401 means the host restarted (users live in its memory), so the pool
is emptied and users register again — a restarted canary is not made to look broken by us.

CLI: ``python -m greenlight.deploy.traffic --rate 50 --duration 60 http://127.0.0.1:8001 ...``
"""
from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from greenlight.errors import UsageError

DEFAULT_MIX = {"/": 0.4, "/login": 0.35, "/register": 0.15, "/purchase": 0.1}
MAX_RATE = 500.0  # per host: a demo generator, not a load test


@dataclass
class TrafficReport:
    """What was sent: requests per host and per status ("error" for no answer)."""

    sent: int = 0
    elapsed_s: float = 0.0
    by_host: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_path: dict[str, int] = field(default_factory=dict)


def check_loopback(url: str) -> str:
    """The base URL (scheme://host:port) if ``url`` points at this machine, else UsageError."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"traffic target {url!r}: only http://<loopback>:<port> URLs")
    host = parts.hostname
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise UsageError(f"traffic target {url!r}: {host} is not a loopback address; the "
                             "generator only sends to 127.0.0.0/8, localhost or ::1") from None
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}:{parts.port or 80}"


def _host_loop(base: str, rate: float, deadline: float, budget: _Budget, mix: dict[str, float],
               rng: random.Random, report: TrafficReport, lock: threading.Lock,
               stop: threading.Event, timeout: float) -> None:
    session = requests.Session()
    users: list[str] = []
    paths, weights = list(mix), list(mix.values())
    interval = 1.0 / rate
    next_at = time.monotonic()
    serial = 0
    while not stop.is_set() and time.monotonic() < deadline and budget.take():
        path = rng.choices(paths, weights)[0]
        if path in ("/login", "/purchase") and not users:
            path = "/register"
        params: dict[str, str] = {}
        if path == "/register":
            serial += 1
            name = f"u{rng.getrandbits(48):012x}{serial}"
            params["user"] = name
        elif path in ("/login", "/purchase"):
            params["user"] = rng.choice(users)
            if path == "/purchase":
                params["amount"] = f"{rng.uniform(5, 50):.2f}"
        try:
            status = str(session.get(base + path, params=params, timeout=timeout).status_code)
        except requests.RequestException:
            status = "error"
        if path == "/register" and status in ("200", "201"):
            users.append(params["user"])
            del users[:-1000]
        elif path in ("/login", "/purchase") and status == "401":
            users.clear()  # the host restarted and forgot its users
        with lock:
            report.sent += 1
            report.by_host[base] = report.by_host.get(base, 0) + 1
            report.by_status[status] = report.by_status.get(status, 0) + 1
            report.by_path[path] = report.by_path.get(path, 0) + 1
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        else:
            next_at = time.monotonic()  # behind schedule: do not burst to catch up


class _Budget:
    """The shared request count, taken one at a time by the host threads."""

    def __init__(self, total: int):
        self._left = total
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def generate_traffic(urls: list[str], rate: float = 20.0, duration_s: float = 10.0,
                     max_requests: int = 10_000, mix: dict[str, float] | None = None,
                     seed: int | None = None, timeout: float = 2.0,
                     stop: threading.Event | None = None) -> TrafficReport:
    """Hit /, /login, /register and /purchase of every loopback host at ``rate`` requests/s
    each, until ``duration_s`` is over, ``max_requests`` are sent or ``stop`` is set."""
    if not urls:
        raise UsageError("traffic: name at least one host URL")
    bases = list(dict.fromkeys(check_loopback(u) for u in urls))
    if not 0 < rate <= MAX_RATE:
        raise UsageError(f"traffic: rate must be in (0, {MAX_RATE:g}] requests/s per host, "
                         f"got {rate}")
    if not 0 < duration_s <= 24 * 3600:
        raise UsageError(f"traffic: duration must be in (0, 86400] seconds, got {duration_s}")
    if max_requests < 1:
        raise UsageError(f"traffic: max_requests must be >= 1, got {max_requests}")
    mix = dict(mix or DEFAULT_MIX)
    if set(mix) - set(DEFAULT_MIX) or not all(w >= 0 for w in mix.values()) or \
            not sum(mix.values()) > 0:
        raise UsageError(f"traffic: mix weights must be >= 0 over {sorted(DEFAULT_MIX)}")
    report = TrafficReport()
    lock, stop = threading.Lock(), stop or threading.Event()
    budget = _Budget(max_requests)
    seeds = random.Random(seed)
    started = time.monotonic()
    deadline = started + duration_s
    threads = [threading.Thread(target=_host_loop, daemon=True, name=f"traffic {base}",
                                args=(base, rate, deadline, budget, mix,
                                      random.Random(seeds.getrandbits(64)), report, lock, stop,
                                      timeout))
               for base in bases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.elapsed_s = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenlight.deploy.traffic",
                                     description="Bounded demo traffic to loopback hosts.")
    parser.add_argument("urls", nargs="+", help="host base URLs, e.g. http://127.0.0.1:8001")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s per host")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (max 86400)")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        report = generate_traffic(args.urls, args.rate, args.duration, args.max_requests,
                                  seed=args.seed)
    except UsageError as exc:
        print(f"traffic: {exc}", file=sys.stderr)
        return 2
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(report.by_status).items()))
    print(f"sent {report.sent} requests in {report.elapsed_s:.1f} s ({statuses})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
