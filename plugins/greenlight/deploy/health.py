"""Health check: a host counts as up only once its health URL answers 200 within a timeout."""
from __future__ import annotations

import time
from dataclasses import dataclass

import requests

# How often a host that is starting is asked: a restarted host counts as up within this much
# of answering, instead of up to ``health_interval`` later (0.25 s by default, a quarter of a
# second per host of the rest phase for nothing); a refused connection on the way costs ~1 ms.
FAST_POLL = 0.05


@dataclass
class HealthResult:
    healthy: bool
    attempts: int
    detail: str  # the last status or error, for the ledger and the message
    seconds: float = 0.0  # from the first try to the verdict


def check_health(url: str, timeout: float = 2.0, retries: int = 40, interval: float = 0.25,
                 poll: float = FAST_POLL) -> HealthResult:
    """GET ``url`` until a 200. A restarting host needs a few tries: it gets ``retries`` tries
    and at least ``(retries - 1) × interval`` seconds (the budget the settings describe), asked
    every ``min(poll, interval)`` seconds within them, so it counts as up as soon as it
    answers."""
    step = min(poll, interval) if poll > 0 else interval
    started = time.monotonic()
    deadline = started + max(retries - 1, 0) * interval
    detail = "not tried"
    attempts = 0
    while True:
        attempts += 1
        try:
            response = requests.get(url, timeout=timeout)
            if response.status_code == 200:
                return HealthResult(True, attempts, "200", time.monotonic() - started)
            detail = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
        now = time.monotonic()
        if attempts >= max(retries, 1) and now >= deadline:
            return HealthResult(False, attempts, detail, now - started)
        time.sleep(max(0.0, min(step, deadline - now)) if now < deadline else step)
