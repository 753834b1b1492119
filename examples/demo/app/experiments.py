"""The shop's experiments: an enhanced signup banner shipped dark behind ``DemoSignup``.

Greenlight's client library is optional. The shop's own tests run without it, and a host
started without ``GREENLIGHT_EXPERIMENTS_DB`` has no experiments; then everybody gets control.
Nothing here may fail a request: any error answers control and is logged.
"""
from __future__ import annotations

import logging
import os

NAME = "DemoSignup"
BRANCHES = {"enhanced": 0.5}  # the rest is control
CONTROL = "control"
ENV = "GREENLIGHT_EXPERIMENTS_DB"
# Demo accounts stand for the groups QA and admins belong to: "admin", "qa-anna", ...
GROUP_PREFIXES = {"admin": "admin", "qa-": "qa"}

log = logging.getLogger("app.experiments")
_client = None


def library():
    """``greenlight.experiments`` when installed (app hosts), else None (the shop's tests)."""
    try:
        import greenlight.experiments as found
    except ImportError:
        return None
    return found  # pragma: no cover - the demo's own venv has no greenlight


def start(environ=None, lib=None, registry=None):
    """Connect to the store named by $GREENLIGHT_EXPERIMENTS_DB and define ``DemoSignup``
    (an existing experiment keeps the state its admins gave it). Returns the client or None."""
    global _client
    url = (os.environ if environ is None else environ).get(ENV)
    if not url:
        return None
    lib = lib or library()
    if lib is None:
        log.warning("experiments: %s is set but greenlight is not installed; "
                    "everybody gets control", ENV)
        return None
    try:
        kwargs = {"registry": registry} if registry is not None else {}
        client = lib.ExperimentClient(url, **kwargs)
        client.define(lib.Experiment(NAME, dict(BRANCHES),
                                     description="Enhanced signup banner on the home page"),
                      "demo-app")
    except Exception as exc:
        log.warning("experiments: cannot start (%s); everybody gets control", exc)
        return None
    _client = client
    return client


def use(client) -> None:
    """Set (or with None, clear) the client the request handlers ask."""
    global _client
    _client = client


def groups_of(user: str) -> tuple[str, ...]:
    return tuple(group for prefix, group in GROUP_PREFIXES.items() if user.startswith(prefix))


def branch_for(user: str) -> str:
    """The branch of ``DemoSignup`` this user sees; control when anything goes wrong."""
    if _client is None or not user:
        return CONTROL
    try:
        return _client.branch_for(user, NAME, groups=groups_of(user))
    except Exception as exc:
        log.warning("experiments: branch_for failed (%s); answering control", exc)
        return CONTROL


def record(user: str, metric: str, value: float = 1.0) -> None:
    """Queue a metric event (login, registration, purchase); never raises."""
    if _client is None or not user:
        return
    try:
        _client.record_event(user, metric, value)
    except Exception as exc:
        log.warning("experiments: record_event failed (%s)", exc)
