"""Experiments: ship unfinished features dark, roll them out by percentage, read results with
significance. The app uses :class:`ExperimentClient`; the admin page and CLI use the functions
of :mod:`greenlight.experiments.admin`, re-exported here."""
from __future__ import annotations

from greenlight.experiments.admin import (close, define, get_experiment, history,
                                          list_experiments, parse_since, results, set_qa,
                                          set_rollout)
from greenlight.experiments.assignment import CompiledExperiment, assign, user_hash
from greenlight.experiments.client import ExperimentClient
from greenlight.experiments.definition import (CLOSED, CONTROL, QA, ROLLOUT, Experiment,
                                               explain, parse_branches)
from greenlight.experiments.render import experiment_summary, render_list, render_results
from greenlight.experiments.store import ExperimentStore, default_url

__all__ = [
    "CLOSED", "CONTROL", "QA", "ROLLOUT",
    "CompiledExperiment", "Experiment", "ExperimentClient", "ExperimentStore",
    "assign", "close", "default_url", "define", "experiment_summary", "explain",
    "get_experiment", "history", "list_experiments", "parse_branches", "parse_since",
    "render_list", "render_results", "results", "set_qa", "set_rollout", "user_hash",
]
