"""Per-hour report cells: what one user adds to a bucket's report, hour by hour (pure).

A report over [start, end) needs, per bucket and branch, the users first exposed in the range
who are in the bucket by ``end``, and per metric the users with an event, the events, Σ and
Σ² of each user's total from exposure to ``end``. Σ² is not additive over time, but its
increments are: when a user's total goes from T to T + v, Σ T² moves by (T + v)² − T². So each
user's history is cut into hours and every hour gets the change of the user's state across it
(users, converting users, events, Σ, Σ²; the attribute counts at the hour the user joins the
bucket). Summing a bucket's cells over exposure days and hours before ``end`` gives exactly
the state of every user at the hour's edge; the store adds the raw change inside a last,
partial hour (and for exposures on a partial first or last day).

Membership: a user is in bucket B at time c when exposed before c, the recorded attributes
match, and for each event filter at least ``min_count`` matching events happened in
[exposure, c). So there is one instant ``member_since`` after which the user is in it.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from greenlight.experiments.buckets import Bucket

HOUR = 3600
DAY = 86400

# One event of a user: (at, name, value, props JSON or None).
Event = tuple[float, str, float, "str | None"]


def _fragments(bucket: Bucket | None) -> list[tuple[str, list[str], int]]:
    if bucket is None:
        return []
    return [(f.name, [json.dumps({k: v}, separators=(",", ":"))[1:-1]
                      for k, v in sorted(f.where.items())], f.min_count) for f in bucket.events]


def member_since(bucket: Bucket | None, exposed_at: float, attributes: dict[str, str],
                 events: Sequence[Event]) -> float | None:
    """The instant after which the user is in ``bucket`` (None: never). ``events`` sorted by
    time. Property filters match the canonical properties text as the SQL ``LIKE`` does."""
    if bucket is None:
        return exposed_at
    for name, values in bucket.attributes.items():
        if attributes.get(name) not in values:
            return None
    since = exposed_at
    for name, fragments, min_count in _fragments(bucket):
        seen = 0
        for at, event, _, props in events:
            if at >= exposed_at and event == name and all(
                    props is not None and f in props for f in fragments):
                seen += 1
                if seen == min_count:
                    since = max(since, at)
                    break
        else:
            return None
    return since


def state(bucket: Bucket | None, exposed_at: float, attributes: dict[str, str],
          events: Sequence[Event], cutoff: float) -> dict[str, list] | None:
    """The user's per-metric [events, total] from exposure to ``cutoff``, or None when the user
    is not in the bucket at ``cutoff``."""
    since = member_since(bucket, exposed_at, attributes, events)
    if since is None or cutoff <= since:
        return None
    sums: dict[str, list] = {}
    for at, name, value, _ in events:
        if exposed_at <= at < cutoff:
            entry = sums.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += value
    return sums


def add_state(metric_cells: dict, attribute_cells: dict, key: tuple, sums: dict | None,
              attributes: dict[str, str], sign: int = 1) -> None:
    """Add (or with ``sign=-1`` take away) one user's state to sums keyed ``key + (metric,)``
    (metric '' counts the user) and ``key + (attribute, value)``."""
    if sums is None:
        return
    _bump(metric_cells, key + ("",), sign, 0, 0.0, 0.0)
    for metric, (n, total) in sums.items():
        _bump(metric_cells, key + (metric,), sign, sign * n, sign * total, sign * total * total)
    for name, value in attributes.items():
        attribute_cells[key + (name, value)] = attribute_cells.get(key + (name, value), 0) + sign


def contributions(bucket: Bucket | None, exposed_at: float, attributes: dict[str, str],
                  events: Sequence[Event], metric_cells: dict, attribute_cells: dict,
                  key: tuple, sign: int = 1) -> None:
    """Add one user's hourly cells to ``metric_cells[key + (hour, metric)]`` ([users, events,
    Σ, Σ²]) and ``attribute_cells[key + (hour, attribute, value)]`` (users). ``events`` sorted
    by time; ``sign=-1`` takes a previous version of the history away."""
    since = member_since(bucket, exposed_at, attributes, events)
    if since is None:
        return
    first_hour = int(since // HOUR)
    limit = (first_hour + 1) * HOUR
    sums: dict[str, list] = {}
    rest = []
    for event in events:
        at, name, value, _ = event
        if at < exposed_at:
            continue
        if at < limit:
            entry = sums.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += value
        else:
            rest.append(event)
    add_state(metric_cells, attribute_cells, key + (first_hour,), sums, attributes, sign)
    _add_events(metric_cells, key, sums, rest, sign)


def _add_events(metric_cells: dict, key: tuple, sums: dict[str, list],
                events: Sequence[Event], sign: int) -> None:
    """Each event moves its own hour's cell by its increment: a first event of its metric
    brings the user, and Σ² grows by the change of the user's total squared. ``sums`` holds
    the user's [count, total] per metric so far and is updated."""
    for at, name, value, _ in events:
        entry = sums.get(name)
        if entry is None:
            entry = sums[name] = [0, 0.0]
        before = entry[1]
        after = before + value
        _bump(metric_cells, key + (int(at // HOUR), name), sign if entry[0] == 0 else 0,
              sign, sign * value, sign * (after * after - before * before))
        entry[0] += 1
        entry[1] = after


def _bump(cells: dict, key: tuple, users: int, n: int, total: float, squares: float) -> None:
    cell = cells.get(key)
    if cell is None:
        cells[key] = [users, n, total, squares]
    else:
        cell[0] += users
        cell[1] += n
        cell[2] += total
        cell[3] += squares


def append(bucket: Bucket | None, exposed_at: float, attributes: dict[str, str],
           old: Sequence[Event], added: Sequence[Event], metric_cells: dict,
           attribute_cells: dict, key: tuple) -> None:
    """The change of the user's cells when ``added`` (sorted) all come at or after every event
    of ``old`` — the usual case, events arriving in time order: a user already in the bucket
    moves each event's hour by that event's own increment, without recomputing the history.
    ``old`` and ``added`` hold only events at or after the exposure; when some of ``added``
    come before the last of ``old``, recompute with :func:`contributions` instead."""
    if not added:
        return
    since = member_since(bucket, exposed_at, attributes, old)
    if since is None:  # not in the bucket before: it may join now, with its whole history
        contributions(bucket, exposed_at, attributes, list(old) + added, metric_cells,
                      attribute_cells, key)
        return
    sums: dict[str, list] = {}
    for at, name, value, _ in old:
        entry = sums.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += value
    _add_events(metric_cells, key, sums, added, 1)
