"""The API of the admin page and the CLI: list experiments, change their state (recording who
and when), explain what users get, compute results. Each function opens the store named by
``url`` (default: $GREENLIGHT_EXPERIMENTS_DB or sqlite:///var/experiments.sqlite) unless given
an open ``store``."""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone

from greenlight.errors import UsageError
from greenlight.experiments.branch_results import DEFAULT_MIN_EFFECT, compute_results
from greenlight.experiments.buckets import ALL_USERS, Bucket
from greenlight.experiments.definition import Experiment
from greenlight.experiments.range_report import build_report
from greenlight.experiments.store import Change, ExperimentStore, Loss


def _open(url: str | None, store: ExperimentStore | None) -> ExperimentStore:
    return store or ExperimentStore(url)


def list_experiments(url: str | None = None, *, store: ExperimentStore | None = None
                     ) -> list[Experiment]:
    """Every experiment, by name. Use ``explain(e)`` and ``e.status_label()`` to show them."""
    states = _open(url, store).load_all()
    return [states[name] for name in sorted(states)]


def get_experiment(name: str, url: str | None = None, *,
                   store: ExperimentStore | None = None) -> Experiment:
    return _open(url, store).get(name)


def define(experiment: Experiment, user: str, url: str | None = None, *,
           store: ExperimentStore | None = None, replace: bool = False) -> Experiment:
    return _open(url, store).define(experiment, user, replace=replace)


def set_rollout(name: str, pct: float, user: str, url: str | None = None, *,
                store: ExperimentStore | None = None) -> Experiment:
    """Roll ``name`` out to ``pct`` percent of users (0–100); users already assigned keep
    their branch when the percentage rises."""
    try:
        pct = float(pct)
    except (TypeError, ValueError):
        raise UsageError(f"rollout percentage must be a number 0-100 (got {pct!r})") from None
    if not 0.0 <= pct <= 100.0:
        raise UsageError(f"rollout percentage must be 0-100 (got {pct:g})")
    return _open(url, store).set_rollout(name, pct, user)


def set_qa(name: str, user: str, users: Sequence[str] | None = None,
           groups: Sequence[str] | None = None, url: str | None = None, *,
           store: ExperimentStore | None = None) -> Experiment:
    """Back to "QA and admins only", optionally replacing the listed users and groups."""
    return _open(url, store).set_qa(name, users, groups, user)


def close(name: str, branch: str, user: str, url: str | None = None, *,
          store: ExperimentStore | None = None) -> Experiment:
    """Close ``name`` on ``branch``: everybody gets it, nobody is assigned any more."""
    return _open(url, store).close(name, branch, user)


def history(name: str, url: str | None = None, *,
            store: ExperimentStore | None = None) -> list[Change]:
    return _open(url, store).history(name)


def results(name: str, url: str | None = None, *, store: ExperimentStore | None = None,
            metrics: Sequence[str] | None = None, since: float | None = None,
            alpha: float = 0.05, min_effect: float = DEFAULT_MIN_EFFECT) -> dict:
    """Results per branch and metric (the JSON contract of ``experiment results``)."""
    opened = _open(url, store)
    experiment = opened.get(name)
    exposed = opened.exposure_counts(name, since)
    aggregates = opened.metric_aggregates(name, metrics, since)
    data = compute_results(experiment, exposed, aggregates, metrics, alpha=alpha,
                           min_effect=min_effect, since=since,
                           previous=opened.last_read(name, since))
    opened.save_read(name, since, data)
    add_losses(data, opened.losses(name, since))
    return data


def add_losses(data: dict, losses: list[Loss]) -> None:
    """Say what the hosts could not record, so smaller counts are never silent."""
    data["losses"] = [{"kind": loss.kind, "count": loss.count, "first_at": loss.first_at,
                       "last_at": loss.last_at} for loss in losses]
    for loss in losses:
        data["warnings"].append(loss_sentence(loss))


def loss_sentence(loss: Loss) -> str:
    return (f"{loss.count:,} {loss.kind}{'s' if loss.count != 1 else ''} could not be recorded "
            f"between {_utc(loss.first_at)} and {_utc(loss.last_at)} (the app hosts' counters):"
            " the counts below are short by that much.")


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """``--since``: epoch seconds, an ISO date/time (UTC unless it says otherwise), or a
    duration back from now such as ``90m``, ``36h``, ``7d``."""
    if text is None or text == "":
        return None
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return (now if now is not None else time.time()) - float(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: expected epoch seconds, an ISO time like "
                         "2024-05-01T12:00 or a duration like 36h / 7d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def save_bucket(name: str, bucket: Bucket, user: str, url: str | None = None, *,
                store: ExperimentStore | None = None) -> Bucket:
    """Save (or replace) a bucket with experiment ``name``; reports apply it."""
    return _open(url, store).save_bucket(name, bucket, user)


def delete_bucket(name: str, bucket: str, user: str, url: str | None = None, *,
                  store: ExperimentStore | None = None) -> None:
    _open(url, store).delete_bucket(name, bucket, user)


def list_buckets(name: str, url: str | None = None, *,
                 store: ExperimentStore | None = None) -> list[Bucket]:
    return _open(url, store).buckets(name)


def report(name: str, start: float | None = None, end: float | None = None,
           bucket_names: Sequence[str] | None = None, url: str | None = None, *,
           store: ExperimentStore | None = None, metrics: Sequence[str] | None = None,
           alpha: float = 0.05) -> dict:
    """The report over users first exposed in [start, end) (default: every exposure so far),
    for the built-in bucket ``all`` and the named saved buckets (default: every saved one)."""
    opened = _open(url, store)
    experiment = opened.get(name)
    saved = {b.name: b for b in opened.buckets(name)}
    if bucket_names:
        unknown = [b for b in bucket_names if b not in saved and b != ALL_USERS]
        if unknown:
            raise UsageError(f"experiment {name} has no bucket {', '.join(map(repr, unknown))}; "
                             f"saved buckets: {', '.join(saved) or 'none'} "
                             "(`greenlight experiment bucket` saves one)")
        chosen = [saved[b] for b in dict.fromkeys(bucket_names) if b != ALL_USERS]
    else:
        chosen = list(saved.values())
    if start is None or end is None:
        span = opened.exposure_span(name)
        first, last = span if span else (time.time(), time.time())
        start = first if start is None else start
        end = max(last + 1.0, time.time()) if end is None else end
    rows = [(None, opened.bucket_report(name, None, start, end, metrics))]
    rows += [(b, opened.bucket_report(name, b, start, end, metrics)) for b in chosen]
    data = build_report(experiment, rows, start, end, alpha=alpha)
    add_losses(data, opened.losses(name, start, end))
    return data
