"""Which deploy put a commit live: the first deploy of the ledger whose sha contains it.

A commit found by blame was rarely deployed alone: it went live with the first deploy whose sha
has it as an ancestor. Deploys of one branch follow each other, so "contains the commit" is false
then true along the ledger, and a binary search asks git O(log n) ancestry questions instead of
one per deploy (a year of history is thousands of deploys). A rollback breaks the order for a
moment, so the search then walks back over the deploys just before the one it found.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from greenlight.incidents.model import Deploy

#: Outcomes whose code went live and stayed (a rolled-back deploy did not ship for good).
LIVE_OUTCOMES = ("success", "superseded", "running", "interrupted", None)
_WALK_BACK = 32


@dataclass(frozen=True)
class Attribution:
    """Where a commit came from: ``shipped`` by ``deploy``; ``before_start`` (live before the
    first deploy the search saw: the ledger's start or the horizon); ``not_deployed``."""

    commit: str
    status: str
    deploy: Deploy | None = None


def shipping_deploys(deploys: Sequence[Deploy]) -> list[Deploy]:
    """The deploys that put code live for good, in the order they went live."""
    return sorted((d for d in deploys if d.kind != "rollback" and d.outcome in LIVE_OUTCOMES),
                  key=lambda d: (d.live_from, str(d.id)))


def attribute(commit: str, deploys: Sequence[Deploy],
              contains: Callable[[str, str], bool]) -> Attribution:
    """The first of ``deploys`` (from ``shipping_deploys``) whose sha contains ``commit``.

    ``contains(commit, sha)`` answers "is ``commit`` an ancestor of ``sha``".
    """
    lo, hi = 0, len(deploys)
    while lo < hi:
        mid = (lo + hi) // 2
        if contains(commit, deploys[mid].sha):
            hi = mid
        else:
            lo = mid + 1
    if lo == len(deploys):
        return Attribution(commit, "not_deployed")
    steps = 0
    while lo > 0 and steps < _WALK_BACK and contains(commit, deploys[lo - 1].sha):
        lo -= 1
        steps += 1
    first = deploys[lo]
    if lo == 0 and first.previous_sha and contains(commit, first.previous_sha):
        return Attribution(commit, "before_start", first)
    return Attribution(commit, "shipped", first)
