"""Experiments: ship unfinished features dark, roll them out by percentage, read results with
significance. The app uses :class:`ExperimentClient`; the admin page and CLI use the functions
of :mod:`greenlight.experiments.admin`, re-exported here.

The admin and rendering names are imported lazily: they pull in scipy (seconds to import),
which an application that only assigns branches should not pay for at start-up.
"""
from __future__ import annotations

import importlib

from greenlight.experiments.assignment import CompiledExperiment, assign, user_hash
from greenlight.experiments.buckets import Bucket, EventFilter
from greenlight.experiments.client import ExperimentClient
from greenlight.experiments.definition import (
    CLOSED,
    CONTROL,
    QA,
    ROLLOUT,
    Experiment,
    explain,
    parse_branches,
)
from greenlight.experiments.store import ExperimentStore, default_url

_LAZY = {
    "close": "admin", "define": "admin", "get_experiment": "admin", "history": "admin",
    "list_experiments": "admin", "parse_since": "admin", "results": "admin", "set_qa": "admin",
    "set_rollout": "admin", "report": "admin", "save_bucket": "admin", "delete_bucket": "admin",
    "list_buckets": "admin", "render_report": "report_render", "parse_day": "range_report",
    "experiment_summary": "render", "render_list": "render", "render_results": "render",
}

__all__ = [
    "CLOSED", "CONTROL", "QA", "ROLLOUT",
    "Bucket", "CompiledExperiment", "EventFilter", "Experiment", "ExperimentClient", "ExperimentStore",
    "assign", "default_url", "explain", "parse_branches", "user_hash", *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'greenlight.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"greenlight.experiments.{module}"), name)
    globals()[name] = value
    return value
