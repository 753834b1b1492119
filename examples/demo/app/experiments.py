"""The shop's experiments: an enhanced signup banner shipped dark behind ``DemoSignup``.

Each exposure carries a few user attributes (gender, age band, usual platform) and each login
its platform, so the experiment report can break results down by bucket: the demo saves two,
"logged into the client" and "women".

Greenlight's client library is optional. The shop's own tests run without it, and a host
started without ``GREENLIGHT_EXPERIMENTS_DB`` has no experiments; then everybody gets control.
Nothing here may fail a request: any error answers control and is logged.
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import os

NAME = "DemoSignup"
BRANCHES = {"enhanced": 0.5}  # the rest is control
CONTROL = "control"
ENV = "GREENLIGHT_EXPERIMENTS_DB"
# Demo accounts stand for the groups QA and admins belong to: "admin", "qa-anna", ...
GROUP_PREFIXES = {"admin": "admin", "qa-": "qa"}

ATTRIBUTES = ("gender", "age_band", "platform")
AGE_BANDS = ("18-24", "25-34", "35-44", "45+")
BUCKETS = {  # name -> (attribute filters, event filters as (event, properties))
    "logged_into_client": ({}, [("login", {"platform": "client"})]),
    "women": ({"gender": ("f",)}, []),
}

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
        client.define(lib.Experiment(NAME, dict(BRANCHES), attributes=ATTRIBUTES,
                                     description="Enhanced signup banner on the home page"),
                      "demo-app")
        save_buckets(client, lib)
    except Exception as exc:
        log.warning("experiments: cannot start (%s); everybody gets control", exc)
        return None
    _client = client
    return client


def save_buckets(client, lib) -> None:
    """Save the demo's buckets with the experiment (unchanged ones are left alone)."""
    if client.store is None:  # a client without a store saves nothing
        return
    for name, (where, did) in BUCKETS.items():
        events = tuple(lib.EventFilter(event, dict(props)) for event, props in did)
        client.store.save_bucket(NAME, lib.Bucket(name, dict(where), events), "demo-app")


def _pick(user: str, salt: str, choices: tuple[str, ...], weights: tuple[int, ...]) -> str:
    """A stable pseudo-random choice per user: the demo's users have no profile to read."""
    bounds = list(itertools.accumulate(weights))
    roll = int.from_bytes(hashlib.sha256(f"{salt}:{user}".encode()).digest()[:4], "big")
    return choices[bisect.bisect_right(bounds, roll % bounds[-1])]


def attributes_of(user: str) -> dict[str, str]:
    """The attributes recorded with the user's exposure."""
    return {"gender": _pick(user, "gender", ("f", "m"), (69, 31)),
            "age_band": _pick(user, "age", AGE_BANDS, (30, 35, 20, 15)),
            "platform": usual_platform(user)}


def usual_platform(user: str) -> str:
    """Where the user usually logs in from: the downloadable client or the web."""
    return _pick(user, "platform", ("client", "web"), (60, 40))


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
        return _client.branch_for(user, NAME, groups=groups_of(user),
                                  attributes=attributes_of(user))
    except Exception as exc:
        log.warning("experiments: branch_for failed (%s); answering control", exc)
        return CONTROL


def record(user: str, metric: str, value: float = 1.0, **properties: str) -> None:
    """Queue a metric event (login, registration, purchase) with its category properties
    (a login's platform); never raises."""
    if _client is None or not user:
        return
    try:
        _client.record_event(user, metric, value, properties=properties or None)
    except Exception as exc:
        log.warning("experiments: record_event failed (%s)", exc)
