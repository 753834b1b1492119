"""Turning what arrives into stored incidents, once: the judge's rollbacks and repeated alerts.

The web page and the CLI both call these; neither keeps a copy. A report that cannot be built
(the repository lacks the sha, git failed) does not stop the incident from being stored: the
failure is returned beside it and the report is retried when someone opens the incident.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenlight.errors import GreenlightError
from greenlight.incidents.intake import incident_from_request
from greenlight.incidents.model import Incident, Report

# Two page views arriving together must not turn one rollback into two incidents.
_ingest_lock = threading.Lock()


@dataclass
class Ingested:
    incident: Incident
    report: Report | None
    error: str | None = None


def ingest_rollbacks(ledger: Any, store: Any,
                     build: Callable[[Incident], Report]) -> list[Ingested]:
    """Open (or refresh) an incident for every open request of the deploy judge, build its
    report with ``build`` and mark the request reported. Idempotent."""
    done = []
    with _ingest_lock:
        for ask in ledger.incidents(status="open"):
            incident = store.by_request(ask.id) or incident_from_request(ask, ledger)
            report, error = None, None
            try:
                report = build(incident)
            except GreenlightError as exc:
                error = str(exc)
            store.save(incident, report.to_dict() if report else None, request_id=ask.id)
            ledger.set_incident_status(ask.id, "reported")
            done.append(Ingested(incident, report, error))
    return done


def duplicate_of(store: Any, incident: Incident, recent: int = 200) -> int | None:
    """The stored incident an Alertmanager resend repeats (same group, start and title).

    Alertmanager re-posts a firing group every ``repeat_interval`` and again when it resolves;
    one incident per group start is what a team wants to see.
    """
    if incident.source != "alertmanager":
        return None
    key = incident.evidence.get("groupKey")
    for known in store.list(limit=recent):
        if (known.source == incident.source and known.started_at == incident.started_at
                and known.title == incident.title and known.evidence.get("groupKey") == key):
            return known.id
    return None
