"""The application side: which branch does this user see, and record what they did.

``branch_for`` never touches the database: it reads a dict of compiled experiment states that a
background thread refreshes every couple of seconds (so an admin's change reaches every app host
within seconds, without a deploy). Exposures and metric events go into in-memory queues that a
second thread drains in batches (exposures: deduplicated there, so the queue holds about
``flush_seconds`` of requests; events: bounded by ``queue_limit``). When the store is down or slow,
requests still succeed: after ``max_stale_seconds`` without a successful refresh every experiment
answers control, and the fallback is logged and counted in Prometheus.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from greenlight.experiments.assignment import CompiledExperiment
from greenlight.experiments.definition import CONTROL, Experiment
from greenlight.experiments.store import ExperimentStore

log = logging.getLogger("greenlight.experiments")

_METRICS: dict[int, dict] = {}
_METRICS_LOCK = threading.Lock()


def _metrics(registry: CollectorRegistry) -> dict:
    """Counters are registered once per registry (a registry refuses duplicate names)."""
    with _METRICS_LOCK:
        found = _METRICS.get(id(registry))
        if found is None:
            found = {
                "fallbacks": Counter("greenlight_experiment_fallbacks",
                                     "Assignments answered with control because the experiment "
                                     "store was unavailable or the experiment unknown",
                                     ["experiment", "reason"], registry=registry),
                "store_errors": Counter("greenlight_experiment_store_errors",
                                        "Failed reads or writes of the experiment store",
                                        ["operation"], registry=registry),
                "dropped": Counter("greenlight_experiment_records_dropped",
                                   "Exposures or events dropped (queue full or write failed)",
                                   ["kind"], registry=registry),
                "written": Counter("greenlight_experiment_records_written",
                                   "Exposures and events written to the store", ["kind"],
                                   registry=registry),
                "available": Gauge("greenlight_experiment_store_available",
                                   "1 while the cached experiment states are fresh",
                                   registry=registry),
            }
            _METRICS[id(registry)] = found
        return found


class _Unavailable:
    """Stands in for a compiled experiment while the store cannot be read: control, counted."""

    __slots__ = ("name", "reason", "client")

    def __init__(self, name: str, reason: str, client: "ExperimentClient"):
        self.name, self.reason, self.client = name, reason, client

    def assign(self, user_id: str, groups: Iterable[str] = ()) -> tuple[str, bool]:
        self.client._count_fallback(self.name, self.reason)
        return CONTROL, False

    def pick(self, user_id: str, groups: Iterable[str] = ()) -> str:
        return self.assign(user_id, groups)[0]


class ExperimentClient:
    """Branch assignment with a cached state, and batched recording off the request path.

    Use one per process: ``client = ExperimentClient(url); client.define(Experiment(...))``;
    then ``client.branch_for(user, "DemoSignup")`` per request and
    ``client.record_event(user, "purchase", 12.5)`` when something worth measuring happens.
    """

    def __init__(self, url: str | None = None, *, store: ExperimentStore | None = None,
                 refresh_seconds: float = 2.0, flush_seconds: float = 1.0,
                 max_stale_seconds: float = 10.0, batch_size: int = 5000,
                 queue_limit: int = 200_000, registry: CollectorRegistry = REGISTRY,
                 start: bool = True, statement_timeout_ms: int = 2000):
        self.refresh_seconds = refresh_seconds
        self.flush_seconds = flush_seconds
        self.max_stale_seconds = max_stale_seconds
        self.batch_size = batch_size
        self._metrics = _metrics(registry)
        self._compiled: dict[str, CompiledExperiment | _Unavailable] = {}
        self._known: set[str] = set()
        self._pending_definitions: list[tuple[Experiment, str]] = []
        self._seen: dict[str, set[str]] = {}  # experiment -> users whose exposure is stored
        # (experiment, user, branch, time) per assigned request of a user not in ``_seen``; the
        # writer drains it every ``flush_seconds``, dropping repeats, so it holds at most about
        # that long of requests.
        self._exposures: deque = deque()
        self.seen_limit = 1_000_000
        self._events: deque = deque(maxlen=queue_limit)
        self._queue_limit = queue_limit
        self._last_ok = 0.0
        self._available = False
        self._warned: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._wake_writer = threading.Event()
        self._threads: list[threading.Thread] = []
        self._store_error: str | None = None
        self._down_logged = False
        self._store_url = url
        try:
            self.store = store or ExperimentStore(url, statement_timeout_ms=statement_timeout_ms,
                                                  connect_timeout=2.0)
        except Exception as exc:  # the app must start even when the store is down
            log.warning("experiments: store unusable (%s); every experiment answers control "
                        "until it is", exc)
            self._metrics["store_errors"].labels("connect").inc()
            self.store = None
        self.refresh()
        if start:
            self.start()

    # --- request path -----------------------------------------------------------------------
    def branch_for(self, user_id: str, experiment: str, groups: Iterable[str] = ()) -> str:
        """The branch ``user_id`` sees in ``experiment`` (control when not assigned).

        Deterministic and sticky (a hash of experiment and user), cheap (no I/O), and records
        an exposure — once per user and experiment — when the user is assigned.
        """
        compiled = self._compiled.get(experiment)
        if compiled is None:
            self._count_fallback(experiment, "unknown" if self._available else "store down")
            return CONTROL
        return compiled.pick(user_id, groups)

    def record_event(self, user_id: str, name: str, value: float = 1.0,
                     at: float | None = None) -> None:
        """Queue a metric event (login, registration, purchase with its revenue)."""
        if len(self._events) >= self._queue_limit:
            self._metrics["dropped"].labels("event").inc()
        self._events.append((user_id, name, float(value), at if at is not None else time.time()))
        if len(self._events) >= self.batch_size:
            self._wake_writer.set()

    def _count_fallback(self, name: str, reason: str) -> None:
        self._metrics["fallbacks"].labels(name, reason).inc()
        if (name, reason) not in self._warned:
            self._warned.add((name, reason))
            log.warning("experiments: %s answers control for everyone (%s)", name, reason)

    # --- definitions and state ---------------------------------------------------------------
    def define(self, experiment: Experiment, by: str = "app") -> None:
        """Make sure ``experiment`` exists in the store (an existing one keeps its state, which
        admins own). When the store is down, retried on every refresh."""
        try:
            if self.store is None:
                raise RuntimeError("store unavailable")
            self.store.define(experiment, by)
        except Exception as exc:
            self._metrics["store_errors"].labels("define").inc()
            log.warning("experiments: cannot define %s yet (%s); will retry", experiment.name,
                        exc)
            self._pending_definitions.append((experiment, by))
            self._known.add(experiment.name)
            if experiment.name not in self._compiled:
                self._compiled = {**self._compiled, experiment.name: _Unavailable(
                    experiment.name, "store down", self)}
            return
        self.refresh()

    def refresh(self) -> bool:
        """Reload every experiment state; on failure keep the last one until it is too old."""
        try:
            if self.store is None:
                self.store = ExperimentStore(self._store_url,
                                             connect_timeout=2.0, statement_timeout_ms=2000)
            while self._pending_definitions:
                experiment, by = self._pending_definitions[0]
                self.store.define(experiment, by)
                self._pending_definitions.pop(0)
            states = self.store.load_all()
        except Exception as exc:
            self._metrics["store_errors"].labels("refresh").inc()
            self._store_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self._available and time.monotonic() - self._last_ok <= self.max_stale_seconds:
                return False  # a blip: keep serving the last known state for a while
            if self._available or not self._down_logged:
                log.warning("experiments: store unavailable (%s); every experiment answers "
                            "control until it is back", self._store_error)
                self._down_logged = True
            self._available = False
            self._metrics["available"].set(0)
            self._warned.clear()
            self._compiled = {name: _Unavailable(name, "store down", self)
                              for name in set(self._compiled) | self._known}
            return False
        if self._down_logged:
            self._down_logged = False
            log.warning("experiments: store is back; experiments follow their state again")
        self._compiled = {name: CompiledExperiment(e).recording_into(
            self._exposures, self._seen.setdefault(name, set())) for name, e in states.items()}
        self._known |= set(states)
        self._last_ok = time.monotonic()
        self._available = True
        self._store_error = None
        self._metrics["available"].set(1)
        return True

    @property
    def available(self) -> bool:
        return self._available

    def state(self, name: str) -> Experiment | None:
        compiled = self._compiled.get(name)
        return compiled.experiment if isinstance(compiled, CompiledExperiment) else None

    # --- background threads -----------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._refresh_loop, "experiments-refresh"),
                             (self._writer_loop, "experiments-writer")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def _writer_loop(self) -> None:
        while not self._stop.is_set():
            self._wake_writer.wait(self.flush_seconds)
            self._wake_writer.clear()
            self.flush()

    def flush(self) -> int:
        """Write queued exposures and events now; returns how many rows were written."""
        written = self._flush_exposures()
        queue = self._events
        while queue:
            batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
            if not self._write("event", batch):
                break
            written += len(batch)
        return written

    def _flush_exposures(self) -> int:
        """Drain the request path's exposure queue: keep each user's first request per
        experiment, skip users already stored, write in batches, and only then mark the users
        seen (a failed write leaves them to be recorded again)."""
        queue, written = self._exposures, 0
        while queue:
            fresh: dict[tuple[str, str], tuple] = {}
            for _ in range(min(self.batch_size * 4, len(queue))):
                row = queue.popleft()
                seen = self._seen.get(row[0])
                if (seen is None or row[1] not in seen) and (row[0], row[1]) not in fresh:
                    fresh[(row[0], row[1])] = row  # the first request is the exposure
                    if len(fresh) >= self.batch_size:
                        break
            if not fresh:
                continue
            batch = list(fresh.values())
            if not self._write("exposure", batch):
                break
            written += len(batch)
            for name, user, _branch, _at in batch:
                seen = self._seen.setdefault(name, set())
                if len(seen) >= self.seen_limit:
                    seen.clear()  # the store ignores duplicate exposures; this only saves writes
                seen.add(user)
        return written

    def _write(self, kind: str, batch: list[tuple]) -> bool:
        try:
            if self.store is None:
                raise RuntimeError("store unavailable")
            if kind == "exposure":
                self.store.write_exposures(batch)
            else:
                self.store.write_events(batch)
        except Exception as exc:
            self._metrics["store_errors"].labels("write").inc()
            self._metrics["dropped"].labels(kind).inc(len(batch))
            log.warning("experiments: dropped %d %ss, store write failed (%s)",
                        len(batch), kind, str(exc).splitlines()[0] if str(exc) else exc)
            return False
        self._metrics["written"].labels(kind).inc(len(batch))
        return True

    def close(self, flush: bool = True) -> None:
        """Stop the threads (after a last flush)."""
        self._stop.set()
        self._wake_writer.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if flush:
            self.flush()
        if self.store is not None:
            self.store.dispose()
