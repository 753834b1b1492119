"""Health check: a host counts as up only once its health URL answers 200 within a timeout."""
from __future__ import annotations

import time
from dataclasses import dataclass

import requests


@dataclass
class HealthResult:
    healthy: bool
    attempts: int
    detail: str  # the last status or error, for the ledger and the message


def check_health(url: str, timeout: float = 2.0, retries: int = 40, interval: float = 0.25
                 ) -> HealthResult:
    """GET ``url`` until a 200 or ``retries`` attempts; a restarting host needs a few tries."""
    detail = "not tried"
    attempts = 0
    for attempts in range(1, max(retries, 1) + 1):
        try:
            response = requests.get(url, timeout=timeout)
            if response.status_code == 200:
                return HealthResult(True, attempts, "200")
            detail = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
        if attempts < retries:
            time.sleep(interval)
    return HealthResult(False, attempts, detail)
