"""The application side: which branch does this user see, and record what they did.

``branch_for`` never touches the database: it reads a dict of compiled experiment states that a
background thread refreshes every couple of seconds (so an admin's change reaches every app host
within seconds, without a deploy). Exposures and metric events go into in-memory queues that a
second thread drains in batches (exposures: deduplicated there, so the queue holds about
``flush_seconds`` of requests; events: bounded by ``queue_limit``). When the store is down or slow,
requests still succeed: after ``max_stale_seconds`` without a successful refresh every experiment
answers control, and the fallback is logged and counted in Prometheus.

Nothing recorded is dropped because the store is busy or down: a write is retried with back-off,
then the batch goes to this process's spool file (:mod:`greenlight.experiments.spool`), which the
writer replays in order, exactly once, when the store answers again (new batches queue behind it,
so a user's first exposure stays first). Only a full spool or a full event queue drops rows; they
are counted, logged, and reported to the store so results say what is missing and when.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from greenlight.experiments.assignment import CompiledExperiment
from greenlight.experiments.buckets import properties_json
from greenlight.experiments.definition import CONTROL, Experiment
from greenlight.experiments.spool import DEFAULT_LIMIT_BYTES, Spool, default_dir
from greenlight.experiments.store import ExperimentStore, default_url

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
                                   "Exposures or events lost (event queue or spool full)",
                                   ["kind"], registry=registry),
                "spooled": Counter("greenlight_experiment_records_spooled",
                                   "Exposures and events written to the spool file because "
                                   "the store could not take them yet", ["kind"],
                                   registry=registry),
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
                 start: bool = True, statement_timeout_ms: int = 10_000,
                 spool_dir: str | Path | None = None,
                 spool_limit_bytes: int = DEFAULT_LIMIT_BYTES, write_attempts: int = 3,
                 retry_seconds: float = 0.25):
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
        # (experiment, user) -> attributes of an assigned user until the writer sends them
        # with the exposure (so it holds about ``flush_seconds`` of new users).
        self._attributes: dict[tuple[str, str], dict] = {}
        self._undeclared: set[str] = set()
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
        self.write_attempts = max(1, write_attempts)
        self.retry_seconds = retry_seconds
        self._statement_timeout_ms = statement_timeout_ms
        # Who reports losses: one name per process, stable for its life.
        self.source = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._batch_seq = 0
        self._lost: dict[tuple[str, str], list] = {}  # (kind, experiment) -> [n, first, last]
        self._lost_lock = threading.Lock()
        self._lost_sent: dict[tuple[str, str], int] = {}
        self._drain_after = 0.0  # monotonic time before which the spool is not replayed
        self._drain_backoff = retry_seconds
        self._divert = False  # set at a slow shutdown: everything goes to the spool
        self.spool = Spool(spool_dir if spool_dir is not None else default_dir(),
                           url or default_url(), spool_limit_bytes)
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
    def branch_for(self, user_id: str, experiment: str, groups: Iterable[str] = (),
                   attributes: Mapping[str, object] | None = None) -> str:
        """The branch ``user_id`` sees in ``experiment`` (control when not assigned).

        Deterministic and sticky (a hash of experiment and user), cheap (no I/O), and records
        an exposure — once per user and experiment — when the user is assigned, with the
        user's ``attributes`` (those the experiment declares; values are categories) stored
        once per user and experiment.
        """
        compiled = self._compiled.get(experiment)
        if compiled is None:
            self._count_fallback(experiment, "unknown" if self._available else "store down")
            return CONTROL
        if attributes and isinstance(compiled, CompiledExperiment):
            self._note_attributes(compiled, user_id, groups, attributes)
        return compiled.pick(user_id, groups)

    def _note_attributes(self, compiled: CompiledExperiment, user_id: str,
                         groups: Iterable[str], attributes: Mapping[str, object]) -> None:
        """Keep the attributes of an assigned user whose exposure is not stored yet, for the
        writer to send with the exposure."""
        key = (compiled.experiment.name, user_id)
        if key in self._attributes or user_id in getattr(compiled, "seen", ()):
            return
        if not compiled.assign(user_id, groups)[1]:
            return
        declared = compiled.experiment.attributes
        kept = {k: str(v)[:100] for k, v in attributes.items() if k in declared}
        if len(kept) < len(attributes) and compiled.experiment.name not in self._undeclared:
            self._undeclared.add(compiled.experiment.name)
            log.warning("experiments: %s records only its declared attributes (%s); ignored "
                        "%s", compiled.experiment.name, ", ".join(declared) or "none",
                        ", ".join(sorted(set(attributes) - set(declared))))
        if kept:
            self._attributes[key] = kept

    def record_event(self, user_id: str, name: str, value: float = 1.0,
                     at: float | None = None,
                     properties: Mapping[str, object] | None = None) -> None:
        """Queue a metric event (login, registration, purchase with its revenue), with
        optional category ``properties`` (``{"platform": "client"}``) that buckets filter on."""
        if len(self._events) >= self._queue_limit:
            try:
                oldest = self._events[0]  # the deque evicts it on append
            except IndexError:  # the writer emptied it meanwhile
                pass
            else:
                self._count_lost("event", "", [oldest[3]], "the event queue is full")
        self._events.append((user_id, name, float(value), at if at is not None else time.time(),
                             properties_json(properties)))
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
                self.store = ExperimentStore(self._store_url, connect_timeout=2.0,
                                             statement_timeout_ms=self._statement_timeout_ms)
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
        """Write queued exposures and events now (after the spool, if it holds anything);
        returns how many rows reached the store."""
        written = self._drain_spool()
        written += self._flush_exposures()
        queue = self._events
        while queue:
            batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
            written += self._send("event", batch)
        self._report_losses()
        return written

    def _flush_exposures(self) -> int:
        """Drain the request path's exposure queue: keep each user's first request per
        experiment, skip users already recorded, write (or spool) in batches, and mark the users
        recorded once their exposure is durable (a dropped batch leaves them to be recorded
        again)."""
        queue, written = self._exposures, 0
        while queue:
            fresh: dict[tuple[str, str], tuple] = {}
            for _ in range(min(self.batch_size * 4, len(queue))):
                row = queue.popleft()
                seen = self._seen.get(row[0])
                attributes = self._attributes.pop((row[0], row[1]), None)
                if (seen is None or row[1] not in seen) and (row[0], row[1]) not in fresh:
                    # the first request is the exposure
                    fresh[(row[0], row[1])] = (*row, attributes) if attributes else row
                    if len(fresh) >= self.batch_size:
                        break
            if not fresh:
                continue
            batch = list(fresh.values())
            stored = self._send("exposure", batch)
            if stored < 0:
                continue
            written += stored
            for name, user, *_ in batch:
                seen = self._seen.setdefault(name, set())
                if len(seen) >= self.seen_limit:
                    seen.clear()  # the store ignores duplicate exposures; this only saves writes
                seen.add(user)
        return written

    # --- delivery: store, retries, spool ---------------------------------------------------------
    def _send(self, kind: str, rows: list) -> int:
        """Deliver one batch: to the store (retried with back-off) while the spool is empty,
        else behind the spool. Returns rows written to the store now, 0 when spooled, -1 when
        lost (spool full)."""
        self._batch_seq += 1
        entry = {"id": f"{self.source}:{self._batch_seq}", "kind": kind,
                 "rows": [list(r) for r in rows]}
        if not self.spool.pending() and not self._divert:
            error = None
            for attempt in range(self.write_attempts):
                try:
                    self._deliver(entry)
                except Exception as exc:  # any driver error: retried, then spooled
                    error = exc
                    self._metrics["store_errors"].labels("write").inc()
                    if attempt + 1 < self.write_attempts and not self._stop.is_set():
                        time.sleep(self.retry_seconds * 2 ** attempt)
                    continue
                self._metrics["written"].labels(kind).inc(len(rows))
                return len(rows)
            log.warning("experiments: store write failed %d times (%s); spooling %d %ss",
                        self.write_attempts, _first_line(error), len(rows), kind)
            self._drain_after = time.monotonic() + self._drain_backoff
        return self._spool(entry)

    def _spool(self, entry: dict) -> int:
        kind, rows = entry["kind"], entry["rows"]
        try:
            stored = self.spool.append(entry)
        except OSError as exc:
            log.warning("experiments: cannot write the spool in %s (%s)", self.spool.directory,
                        exc)
            stored = False
        if not stored:
            self._count_lost(kind, rows[0][0] if kind == "exposure" else "",
                             [r[3] for r in rows], "the spool is full", len(rows))
            return -1
        self._metrics["spooled"].labels(kind).inc(len(rows))
        return 0

    def _deliver(self, entry: dict) -> None:
        """One batch into the store, in one transaction, at most once (its id)."""
        if self.store is None:
            self.store = ExperimentStore(self._store_url, connect_timeout=2.0,
                                         statement_timeout_ms=self._statement_timeout_ms)
        kind = entry["kind"]
        if kind == "exposure":
            self.store.write_exposures([tuple(r) for r in entry["rows"]], batch_id=entry["id"])
        elif kind == "event":
            self.store.write_events([tuple(r) for r in entry["rows"]], batch_id=entry["id"])
        elif kind == "loss":
            self.store.report_losses(entry["source"], [tuple(r) for r in entry["rows"]])
        else:
            log.warning("experiments: spool entry of unknown kind %r skipped", kind)

    def _drain_spool(self) -> int:
        """Replay the spool into the store, oldest first; on failure wait (doubling, up to
        ``max_stale_seconds``) before trying again. Returns rows replayed."""
        if not self.spool.pending() or self._divert or time.monotonic() < self._drain_after:
            return 0
        replayed = [0]

        def deliver(entry: dict) -> None:
            self._deliver(entry)
            if entry["kind"] in ("exposure", "event"):
                replayed[0] += len(entry["rows"])
                self._metrics["written"].labels(entry["kind"]).inc(len(entry["rows"]))

        try:
            self.spool.drain(deliver)
        except Exception as exc:  # the store is still not taking writes
            self._metrics["store_errors"].labels("write").inc()
            self._drain_after = time.monotonic() + self._drain_backoff
            self._drain_backoff = min(self._drain_backoff * 2, max(self.max_stale_seconds, 1.0))
            log.debug("experiments: spool replay waits (%s)", _first_line(exc))
        else:
            self._drain_backoff = self.retry_seconds
            if replayed[0]:
                log.warning("experiments: store is back; replayed %d spooled rows",
                            replayed[0])
        return replayed[0]

    # --- losses ----------------------------------------------------------------------------------
    def _count_lost(self, kind: str, experiment: str, times: list[float], why: str,
                    count: int | None = None) -> None:
        count = len(times) if count is None else count
        with self._lost_lock:
            entry = self._lost.setdefault((kind, experiment), [0, min(times), max(times)])
            entry[0] += count
            entry[1] = min(entry[1], min(times))
            entry[2] = max(entry[2], max(times))
        self._metrics["dropped"].labels(kind).inc(count)
        log.warning("experiments: %d %ss lost (%s); results will say so", count, kind, why)

    def _report_losses(self) -> None:
        """Send the cumulative loss counters when they changed (absolute values, so the
        store may see a report twice; spooled like data while the store is away)."""
        with self._lost_lock:
            changed = {key: list(v) for key, v in self._lost.items()
                       if self._lost_sent.get(key) != v[0]}
        if not changed:
            return
        self._batch_seq += 1
        entry = {"id": f"{self.source}:{self._batch_seq}", "kind": "loss", "source": self.source,
                 "rows": [[k, e, n, f, last] for (k, e), (n, f, last) in changed.items()]}
        try:
            if self.spool.pending() or self._divert:
                raise RuntimeError("spool pending")
            self._deliver(entry)
        except Exception:
            try:
                self.spool.append(entry, force=True)
            except OSError as exc:
                log.warning("experiments: cannot record losses in the spool (%s)", exc)
                return
        for key, (n, _f, _l) in changed.items():
            self._lost_sent[key] = n

    def close(self, flush: bool = True) -> None:
        """Stop the threads, then flush what is left (to the store, or the spool)."""
        self._stop.set()
        self._wake_writer.set()
        # The writer may be inside a write waiting for a lock: let it finish (one statement
        # timeout per attempt), never flush beside it — two writers would share one spool.
        patience = 30 + self.write_attempts * self._statement_timeout_ms / 1000
        for thread in self._threads:
            thread.join(timeout=patience)
        if any(t.is_alive() for t in self._threads):
            # A store too slow to take the rest before shutdown: what is left goes to the
            # spool (seconds of disk appends), for the next client to replay.
            log.warning("experiments: the store is still busy after %.0f s; spooling the rest",
                        patience)
            self._divert = True
            for thread in self._threads:
                thread.join()
        self._threads.clear()
        if flush:
            self._drain_after = 0.0
            self.flush()
            for attempt in range(self.write_attempts):  # a busy store: a few more tries
                if not self.spool.pending() or self._divert:
                    break
                time.sleep(self.retry_seconds * 2 ** attempt)
                self._drain_after = 0.0
                self._drain_spool()
        if self.spool.pending():
            log.warning("experiments: %d bytes of spooled rows stay in %s; the next client on "
                        "this store replays them", self.spool.bytes_pending(),
                        self.spool.directory)
        self.spool.close()
        if self.store is not None:
            self.store.dispose()


def _first_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__
