"""The flaky tests page: which tests flaked most often, read-only, from the flaky ledger.

A flaky test does not fail the build (it is marked WARNINGS), so without a place that counts
them they would be forgotten; this page ranks them (count, first and last seen, last build and
commit) so the team fixes root causes. ``?days=N`` limits to recent occurrences (over time:
compare the all-time ranking with the last week's). Everything shown comes from test ids and
commits, so all of it is escaped (Jinja2 autoescape, templates/greenlight/flaky.html).
"""
from __future__ import annotations

import functools
import time

from flask import Blueprint, abort, g, render_template, request

from greenlight.errors import GreenlightError
from greenlight.www import dashboard

blueprint = Blueprint("flaky", __name__, template_folder="templates")
WINDOWS = (("all time", None), ("last 30 days", 30), ("last 7 days", 7), ("last day", 1))


@functools.lru_cache(maxsize=4)
def _ledger_for(url: str):
    from greenlight.shards.flaky import FlakyLedger

    return FlakyLedger(url)


def ledger():
    """The ledger named by ``[shards] durations_url`` (shared with the durations store)."""
    return _ledger_for(g.settings.expand(g.settings["shards"]["durations_url"]))


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, f"{name} must be a whole number {low}-{high}")
    return int(raw)


@blueprint.route("/")
def flaky_list() -> str:
    days = _int_arg("days", None, 1, 3650)
    limit = _int_arg("limit", 100, 1, 1000)
    since = time.time() - days * 86400 if days else None
    entries, error = [], None
    try:
        entries = ledger().flakiest(limit=limit, since=since)
    except GreenlightError as exc:
        error = str(exc)
    body = render_template("greenlight/flaky.html", entries=entries, error=error,
                           windows=WINDOWS, window=f"last {days} days" if days else "all time")
    return dashboard.layout("Flaky tests", body)
