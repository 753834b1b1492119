"""The report's hourly cells against the raw join they replace: on a randomized store (events
written before and after their users' exposures, out of time order, in several batches; buckets
saved before and after the writes), every bucket over every kind of range — whole days, a range
starting and ending mid-day and mid-hour, one inside a single day, one ending at an hour's edge
or exactly at an event — gives the same users, attribute counts and per-metric aggregates."""
from __future__ import annotations

import random

import pytest

from greenlight.experiments import Bucket, EventFilter, Experiment, ExperimentStore
from greenlight.experiments.store import (attribute_cells_table, cell_state_table, cells_table)

DAY = 86400.0
HOUR = 3600.0
T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z
NAME = "Cells"

BUCKETS = [
    Bucket("women_client", {"gender": ("f",)}, (EventFilter("login", {"platform": "client"}),)),
    Bucket("two_purchases", events=(EventFilter("purchase", min_count=2),)),
    Bucket("any_gender", {"gender": ("f", "m")}),
]


def _data(seed: int):
    rng = random.Random(seed)
    exposures, events = [], []
    for i in range(120):
        user = f"u{i}"
        at = round(T0 + rng.random() * 3 * DAY, 3)
        attributes = {}
        if rng.random() < 0.9:
            attributes["gender"] = rng.choice("fm")
        if rng.random() < 0.5:
            attributes["platform"] = rng.choice(["client", "web"])
        exposures.append((NAME, user, rng.choice(["control", "enhanced"]), at, attributes))
        for _ in range(rng.randrange(7)):
            name = rng.choice(["login", "login", "purchase", "registration"])
            value = round(rng.gammavariate(2, 10), 2) if name == "purchase" else 1.0
            if name == "purchase" and rng.random() < 0.1:
                value = 0.0
            props = f'{{"platform":"{rng.choice(["client", "web"])}"}}' if name == "login" \
                else None
            events.append((user, name, value, round(at + rng.uniform(-0.5, 2.5) * DAY, 3),
                           props))
    for i in range(20):  # users never exposed
        events.append((f"stranger{i}", "purchase", 5.0, round(T0 + rng.random() * 3 * DAY, 3),
                       None))
    rng.shuffle(events)
    return exposures, events


def _ranges(events):
    an_event = sorted(e[3] for e in events)[len(events) // 2]
    return [(T0, T0 + 4 * DAY), (0.0, 1e10),
            (T0 + 0.3 * DAY, T0 + 1.7 * DAY + 123.4),
            (T0 + DAY + 7 * HOUR + 5, T0 + DAY + 9 * HOUR + 1800),
            (T0 + 0.5 * DAY, T0 + 2 * DAY + 13 * HOUR),
            (T0 + 0.8 * DAY + 11, T0 + 2.2 * DAY + 77), (T0 + 0.1 * DAY, T0 + 0.6 * DAY),
            (T0, an_event), (T0 + 2 * DAY, T0 + 3.5 * DAY)]


def _same(fast, raw):
    assert fast.counts == raw.counts
    assert fast.attributes == raw.attributes
    got = {(a.branch, a.metric): a for a in fast.aggregates}
    want = {(a.branch, a.metric): a for a in raw.aggregates}
    assert got.keys() == want.keys()
    for key, a in want.items():
        b = got[key]
        assert (b.converting, b.events) == (a.converting, a.events), key
        assert b.total == pytest.approx(a.total, rel=1e-9, abs=1e-6), key
        assert b.total_squares == pytest.approx(a.total_squares, rel=1e-9, abs=1e-6), key


def _compare(store, events, metrics=None):
    checked = 0
    for start, end in _ranges(events):
        for bucket in [None, *BUCKETS]:
            raw = store.bucket_report_raw(NAME, bucket, start, end, metrics)
            _same(store.bucket_report(NAME, bucket, start, end, metrics), raw)
            checked += sum(raw.counts.values())
    assert checked > 500  # the ranges hold users, so equality says something


def _defined_store(db_url: str) -> ExperimentStore:
    """A store holding the experiment every test here reports on (rolled out to everyone)."""
    store = ExperimentStore(db_url)
    store.define(Experiment(NAME, {"enhanced": 0.5}, status="rollout", rollout_pct=100,
                            attributes=("gender", "platform")), "test")
    return store


@pytest.mark.parametrize("seed,in_time_order", [(1, False), (2, True)])
def test_cells_equal_the_raw_join(db_url, seed, in_time_order):
    """Shuffled batches take the recomputation of each user's history; batches in time order
    the per-event increments."""
    exposures, events = _data(seed)
    if in_time_order:
        events.sort(key=lambda e: e[3])
    store = _defined_store(db_url)
    third = len(events) // 3
    store.write_events(events[:third])  # before their users are exposed
    store.save_bucket(NAME, BUCKETS[0], "test")  # built from the raw rows, then kept by writes
    store.write_exposures(exposures[:60])
    store.bucket_report(NAME, None, T0, T0 + DAY)  # builds 'all'; the rest is folded
    for start in range(third, len(events), 37):  # later batches, out of time order
        store.write_events(events[start:start + 37])
    store.write_exposures(exposures[60:])
    store.write_exposures(exposures[:10])  # repeats: the first exposure wins
    for bucket in BUCKETS[1:]:
        store.save_bucket(NAME, bucket, "test")
    _compare(store, events)
    _compare(store, events, metrics=["purchase"])
    store.dispose()


def test_a_store_from_before_the_cells_gets_them_on_the_first_report(db_url):
    exposures, events = _data(3)
    store = _defined_store(db_url)
    store.write_exposures(exposures)
    store.write_events(events)
    for bucket in BUCKETS:
        store.save_bucket(NAME, bucket, "test")
    for table in (cells_table, attribute_cells_table, cell_state_table):
        table.drop(store.engine)
    store.dispose()
    reopened = ExperimentStore(db_url)  # the tables are created on open, empty
    _compare(reopened, events)
    reopened.dispose()


def test_a_changed_bucket_is_rebuilt(db_url):
    exposures, events = _data(4)
    store = _defined_store(db_url)
    store.write_exposures(exposures)
    store.write_events(events)
    store.save_bucket(NAME, Bucket("b", {"gender": ("m",)}), "test")
    changed = Bucket("b", {"gender": ("f",)}, (EventFilter("login"),))
    store.save_bucket(NAME, changed, "test")
    start, end = T0 + 0.3 * DAY, T0 + 1.7 * DAY + 123.4
    _same(store.bucket_report(NAME, changed, start, end),
          store.bucket_report_raw(NAME, changed, start, end))
    store.delete_bucket(NAME, "b", "test")
    assert store.bucket_report_raw(NAME, changed, start, end).counts  # non-empty check
    store.dispose()
