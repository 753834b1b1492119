"""Buckets: named sets of exposed users a report breaks down by ("logged into the client" = users
with at least one ``login`` event with ``platform=client`` after their exposure).

A bucket is a filter over the user attributes recorded with the exposure (each named attribute
must take one of the listed values) and over events (the user did each listed event at least
``min_count`` times after exposure, before the report's end, with the listed properties). Pure
data, saved with the experiment as JSON; the store turns it into SQL at report time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from greenlight.errors import UsageError
from greenlight.experiments.definition import check_name

ALL_USERS = "all"  # the bucket every report has: every user exposed in the range
MAX_VALUE = 100


@dataclass(frozen=True)
class EventFilter:
    """At least ``min_count`` events named ``name`` after exposure, each with every property
    in ``where``."""

    name: str
    where: dict[str, str] = field(default_factory=dict)
    min_count: int = 1

    def __post_init__(self) -> None:
        check_name(self.name, "bucket event name")
        for key, value in self.where.items():
            check_name(key, "bucket event property")
            _check_value(value, f"event {self.name} property {key}")
        if not isinstance(self.min_count, int) or self.min_count < 1:
            raise UsageError(f"bucket event {self.name}: min count must be >= 1 "
                             f"(got {self.min_count!r})")

    def describe(self) -> str:
        props = "".join(f", {k}={v}" for k, v in sorted(self.where.items()))
        times = f" at least {self.min_count} times" if self.min_count > 1 else ""
        return f"did {self.name}{props}{times} after exposure"


@dataclass(frozen=True)
class Bucket:
    name: str
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: tuple[EventFilter, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "bucket name")
        if self.name == ALL_USERS:
            raise UsageError(f"bucket name {ALL_USERS!r} is reserved: every report has it")
        for key, values in self.attributes.items():
            check_name(key, "bucket attribute")
            if not values:
                raise UsageError(f"bucket {self.name}: attribute {key} needs at least one value")
            for value in values:
                _check_value(value, f"bucket {self.name} attribute {key}")
        if not self.attributes and not self.events:
            raise UsageError(f"bucket {self.name}: give at least one --where ATTR=VALUE or "
                             "--did EVENT filter (every user is the built-in bucket 'all')")

    def describe(self) -> str:
        parts = [f"{k} in {', '.join(v)}" if len(v) > 1 else f"{k} = {v[0]}"
                 for k, v in sorted(self.attributes.items())]
        parts += [e.describe() for e in self.events]
        return self.description or "; ".join(parts)

    def to_json(self) -> str:
        return json.dumps({"attributes": {k: list(v) for k, v in self.attributes.items()},
                           "events": [{"name": e.name, "where": e.where,
                                       "min_count": e.min_count} for e in self.events],
                           "description": self.description}, sort_keys=True)

    @classmethod
    def from_json(cls, name: str, text: str) -> "Bucket":
        data = json.loads(text)
        return cls(name, {k: tuple(v) for k, v in data.get("attributes", {}).items()},
                   tuple(EventFilter(e["name"], dict(e.get("where", {})),
                                     int(e.get("min_count", 1))) for e in data.get("events", [])),
                   data.get("description", ""))


def _check_value(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        raise UsageError(f"{what}: values are 1-{MAX_VALUE} characters (got {value!r})")


def parse_where(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``["platform=client,web", "gender=f"]`` → {"platform": ("client", "web"), ...}."""
    found: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where {item!r}: expected ATTRIBUTE=VALUE[,VALUE...]")
        found[key.strip()] = tuple(v.strip() for v in values.split(",") if v.strip())
    return found


def parse_did(items: list[str], min_count: int = 1) -> tuple[EventFilter, ...]:
    """``["login:platform=client"]`` → one EventFilter; properties after ':' joined by ','."""
    filters = []
    for item in items:
        name, _, props = item.partition(":")
        where: dict[str, str] = {}
        for prop in (p for p in props.split(",") if p.strip()):
            key, sep, value = prop.partition("=")
            if not sep:
                raise UsageError(f"--did {item!r}: expected EVENT[:PROPERTY=VALUE,...]")
            where[key.strip()] = value.strip()
        filters.append(EventFilter(name.strip(), where, min_count))
    return tuple(filters)


def properties_json(properties: dict | None) -> str | None:
    """The canonical text of an event's properties: sorted keys, no spaces. A filter on
    ``k=v`` then matches the substring ``"k":"v"`` exactly (quotes inside values are escaped,
    so no other key or value can contain it)."""
    if not properties:
        return None
    return json.dumps({str(k): str(v)[:MAX_VALUE] for k, v in properties.items()},
                      sort_keys=True, separators=(",", ":"))


def property_pattern(key: str, value: str) -> str:
    """The LIKE pattern that finds ``key=value`` in :func:`properties_json` text."""
    fragment = json.dumps({key: value}, separators=(",", ":"))[1:-1]
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
