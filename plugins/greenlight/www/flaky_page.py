"""The flaky tests page: which tests flaked most often, read-only, from the flaky ledger.

A flaky test does not fail the build (it is marked WARNINGS), so without a place that counts
them they would be forgotten; this page ranks them (count, first and last seen, last build and
commit) so the team fixes root causes. ``?days=N`` limits to recent occurrences (over time:
compare the all-time ranking with the last week's). Everything shown comes from test ids and
commits, so all of it is escaped.
"""
from __future__ import annotations

import functools
import html
import time

from flask import Blueprint, abort, g, request

from greenlight.errors import GreenlightError
from greenlight.www import dashboard

blueprint = Blueprint("flaky", __name__)
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
    e = html.escape
    days = _int_arg("days", None, 1, 3650)
    limit = _int_arg("limit", 100, 1, 1000)
    since = time.time() - days * 86400 if days else None
    try:
        entries = ledger().flakiest(limit=limit, since=since)
    except GreenlightError as exc:
        return dashboard.layout("Flaky tests", f'<p class="bad">{e(str(exc))}</p>')
    links = " ".join(
        f'<a href="?days={d}">{e(label)}</a>' if d else f'<a href="?">{e(label)}</a>'
        for label, d in WINDOWS)
    window = f"last {days} days" if days else "all time"
    head = (f"<p>Tests that failed, then passed when rerun alone in the same build "
            f"({e(window)}; flakiest first). Show: {links}</p>")
    if not entries:
        return dashboard.layout("Flaky tests", head + '<p id="none">No flaky tests recorded.</p>')
    rows = []
    for rank, x in enumerate(entries, 1):
        j = x.to_json()
        rows.append(
            f'<tr class="flaky"><td>{rank}</td><td><code>{e(x.test_id)}</code></td>'
            f'<td class="count">{x.count}</td><td>{e(j["first_seen"])}</td>'
            f'<td>{e(j["last_seen"])}</td><td>{e(x.last_build or "")}</td>'
            f'<td><code>{e((x.last_commit or "")[:12])}</code></td></tr>')
    table = ("<table id=\"flaky\"><tr><th>#</th><th>test</th><th>times flaky</th>"
             "<th>first seen (UTC)</th><th>last seen (UTC)</th><th>last build</th>"
             "<th>last commit</th></tr>" + "".join(rows) + "</table>")
    return dashboard.layout("Flaky tests", head + table)
