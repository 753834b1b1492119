"""Schema review: classify SQL migrations by what the database really does (lock, rebuild,
copy, scan, or break the release still running), weigh it against table sizes, and gate deploys
until a reviewer approves.  Plain Python, no Buildbot import.

The names below load on first use: a PostgreSQL review should not pay for sqlglot,
SQLAlchemy or git at start (the CLI runs once per push).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ApprovalStore": "schema_review.approvals", "Finding": "schema_review.model",
    "finding_key": "schema_review.model", "normalize_statement": "schema_review.model",
    "pre_push_check": "schema_review.prepush", "Report": "schema_review.review",
    "Reviewer": "schema_review.review", "ReviewSettings": "schema_review.review",
    "review_texts": "schema_review.review", "LiveDatabase": "schema_review.sizes",
    "SizeSource": "schema_review.sizes", "SizesFile": "schema_review.sizes",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'schema_review' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
