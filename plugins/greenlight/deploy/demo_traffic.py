"""The demo's traffic: calm between deploys, full while one runs.

The judge needs many requests only while it watches a canary; between deploys the demo hosts
only need enough traffic for their metrics (and the trending page) to move. So the generator
(``greenlight.deploy.traffic``) runs at ``idle_rate`` requests/s per host, and at ``rate``
while a deploy, rollback or recovery holds the deploy lock. On a 2-core machine 20 hosts at
40 requests/s for four hours kept half a core busy for nothing.

The lock is watched through ``/proc/locks`` (read-only: taking the lock to test it, even for a
moment, could make a deploy that does not wait fail). Where there is no ``/proc/locks`` the
full rate is used all the time.

CLI (``greenlight up`` starts it; ``greenlight down`` or ``kill $(cat var/traffic.pid)`` stops
it)::

    python -m greenlight.deploy.demo_traffic --lock var/deploy/deploy.lock --rate 40 \\
        --idle-rate 2 --duration 14400 http://127.0.0.1:18100 ...
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from greenlight.deploy.traffic import TrafficReport, check_loopback, generate_traffic
from greenlight.errors import UsageError

PROC_LOCKS = "/proc/locks"
POLL = 0.5  # seconds between two looks at the deploy lock


def lock_held(lock_file: str | os.PathLike, proc_locks: str = PROC_LOCKS) -> bool | None:
    """Whether some process holds an flock on ``lock_file``; None when this system cannot
    tell (no /proc/locks). A missing lock file is not held."""
    try:
        inode = os.stat(lock_file).st_ino
    except FileNotFoundError:
        return False
    try:
        table = Path(proc_locks).read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters are marked "->"
        if len(fields) >= 6 and fields[1] == "FLOCK" and "->" not in fields:
            if fields[5].rsplit(":", 1)[-1] == str(inode):
                return True
    return False


def rate_now(rate: float, idle_rate: float, held: bool | None) -> float:
    """The rate per host for the lock's state (unknown state: the full rate)."""
    return idle_rate if held is False else rate


def run(urls: list[str], rate: float, idle_rate: float, duration_s: float, lock_file: str,
        max_requests: int = 50_000_000, stop: threading.Event | None = None,
        held: Callable[[], bool | None] | None = None, poll: float = POLL,
        segments: list[tuple[float, int]] | None = None) -> list[tuple[float, int]]:
    """Send traffic until ``duration_s`` is over, ``max_requests`` are sent or ``stop`` is set,
    at ``rate`` while the deploy lock is held and ``idle_rate`` otherwise. Returns the rate
    segments it ran, (rate, requests sent), appended to ``segments`` as each one ends."""
    for url in urls:
        check_loopback(url)  # refused here, not in a thread that would only print it
    stop = stop or threading.Event()
    held = held or (lambda: lock_held(lock_file))
    deadline = time.monotonic() + duration_s
    segments = [] if segments is None else segments
    sent = 0
    while not stop.is_set() and sent < max_requests:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        state = held()
        current = rate_now(rate, idle_rate, state)
        segment_stop = threading.Event()
        report = TrafficReport()
        worker = None
        if current > 0:
            def send(current=current, left=left, report=report, segment_stop=segment_stop):
                report.__dict__.update(generate_traffic(
                    urls, current, left, max_requests - sent, stop=segment_stop).__dict__)
            worker = threading.Thread(target=send, daemon=True, name="demo traffic")
            worker.start()
        while not stop.is_set() and time.monotonic() < deadline and held() == state:
            if worker is not None and not worker.is_alive():
                break
            stop.wait(poll)
        ended_itself = worker is not None and not worker.is_alive()
        segment_stop.set()
        if worker is not None:
            worker.join()
        sent += report.sent
        segments.append((current, report.sent))
        print(f"demo traffic: {current:g} requests/s per host"
              f" ({'deploy running' if state else 'between deploys'}): {report.sent} sent",
              flush=True)
        if generator_gave_up(ended_itself, report.sent, current) and not stop.is_set():
            break
    return segments


def generator_gave_up(ended_itself: bool, sent: int, rate: float) -> bool:
    """Whether a segment's generator returned on its own having sent nothing at a rate above
    0: it refused (a bad URL) or the budget is spent. A segment that the deploy lock's change
    cut short before its first request came back is not that: the demo's traffic stopped for
    good after a deploy that held the lock for a moment ("…(deploy running): 0 sent")."""
    return ended_itself and sent == 0 and rate > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenlight.deploy.demo_traffic",
                                     description="Demo traffic: calm between deploys, full "
                                     "while one runs.")
    parser.add_argument("urls", nargs="+", help="host base URLs (loopback only)")
    parser.add_argument("--lock", required=True, help="the deploy lock file")
    parser.add_argument("--rate", type=float, required=True, help="requests/s per host while "
                        "a deploy runs")
    parser.add_argument("--idle-rate", type=float, required=True, help="requests/s per host "
                        "between deploys (0 = none)")
    parser.add_argument("--duration", type=float, required=True, help="seconds (max 86400)")
    parser.add_argument("--max-requests", type=int, default=50_000_000)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(args.urls, args.rate, args.idle_rate, args.duration, args.lock,
            args.max_requests, stop)
    except UsageError as exc:
        print(f"demo traffic: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
