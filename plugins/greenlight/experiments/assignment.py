"""Deterministic branch assignment, compiled once per experiment state so the per-request cost is
one hash and two integer comparisons.

The hash: MurmurHash3 (x86, 32 bits; the ``mmh3`` C extension, which hashes the UTF-8 of the id)
seeded with a per-experiment value. Its finaliser makes the bits avalanche, so buckets are
uniform and the buckets of two experiments behave as independent (both are checked by
chi-squared tests); the same function exists in every language, so another service can
reproduce an assignment. The top 16 bits decide whether a user is inside the rollout, the low 16
bits pick the branch: raising the rollout only adds users, and never moves anyone between
branches, since the branch bits do not depend on the percentage.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Iterable

import mmh3

from greenlight.experiments.definition import CLOSED, CONTROL, QA, ROLLOUT, Experiment

_SPACE = 1 << 16  # resolution of rollout and weights: 1/65,536


def experiment_seed(name: str) -> int:
    """Per-experiment seed of the user hash: different experiments, independent assignments."""
    return zlib.crc32(b"greenlight-experiment:" + name.encode("utf-8"))


def user_hash(user_id: str, seed: int) -> int:
    """32 well-mixed bits for (experiment, user); stable across processes and machines."""
    return mmh3.hash(user_id, seed, False)


class CompiledExperiment:
    """An experiment state turned into integer thresholds.

    ``assign(user_id, groups)`` returns ``(branch, counted)``: ``counted`` is True when the user
    was assigned (an exposure to record), False when they get a default without being part of
    the experiment (outside the rollout, not QA, or closed).
    """

    __slots__ = ("name", "seed", "mode", "rollout_cut", "cuts", "closed_branch",
                 "qa_users", "qa_groups", "experiment", "seen", "exposures", "rolling")

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.name = experiment.name
        self.seed = experiment_seed(experiment.name)
        self.mode = experiment.status
        self.rolling = experiment.status == ROLLOUT
        self.rollout_cut = round(experiment.rollout_pct / 100.0 * _SPACE)
        cuts, running = [], 0.0
        for branch, weight in experiment.branches.items():
            running += weight
            cuts.append((round(running * _SPACE), branch))
        self.cuts = tuple(cuts)
        self.closed_branch = experiment.closed_branch
        self.qa_users = frozenset(experiment.qa_users)
        self.qa_groups = frozenset(experiment.qa_groups)
        self.seen: set[str] | frozenset[str] = frozenset()
        self.exposures = None

    def recording_into(self, exposures, seen: set[str] | None = None) -> "CompiledExperiment":
        """Make :meth:`pick` append ``(experiment, user, branch, time)`` for each assigned user not
        in ``seen`` to ``exposures`` (anything with ``append``). ``seen`` holds the users whose
        exposure this process has already stored; the writer fills it, off the request path,
        and drops the repeats a user makes before that (so a refresh, which compiles a new
        state, does not re-record anybody)."""
        self.exposures = exposures
        if seen is not None:
            self.seen = seen
        return self

    def pick(self, user_id: str, groups: Iterable[str] = (), _hash=mmh3.hash,
             _now=time.time) -> str:
        """:meth:`assign` plus exposure recording, inlined: this is the per-request hot path
        (one C hash, a set lookup and, for a user not yet recorded, one append), so it avoids
        every call and allocation it can. Deduplication is the writer's."""
        if self.rolling:
            h = _hash(user_id, self.seed, False)
            if (h >> 16) >= self.rollout_cut:
                return CONTROL
            low = h & 0xFFFF
            branch = CONTROL
            for cut, name in self.cuts:
                if low < cut:
                    branch = name
                    break
        else:
            branch, counted = self.assign(user_id, groups)
            if not counted:
                return branch
        if user_id not in self.seen and self.exposures is not None:
            self.exposures.append((self.name, user_id, branch, _now()))
        return branch

    def branch_of_hash(self, h: int) -> str:
        low = h & 0xFFFF
        for cut, branch in self.cuts:
            if low < cut:
                return branch
        return CONTROL

    def assign(self, user_id: str, groups: Iterable[str] = ()) -> tuple[str, bool]:
        mode = self.mode
        if mode == CLOSED:
            return self.closed_branch, False
        if mode == QA:
            if user_id not in self.qa_users and not self.qa_groups.intersection(groups):
                return CONTROL, False
            return self.branch_of_hash(user_hash(user_id, self.seed)), True
        h = user_hash(user_id, self.seed)
        if (h >> 16) >= self.rollout_cut:
            return CONTROL, False
        return self.branch_of_hash(h), True


def assign(experiment: Experiment, user_id: str, groups: Iterable[str] = ()) -> tuple[str, bool]:
    """One-off assignment (compiles the experiment each time; the client caches compiled ones)."""
    return CompiledExperiment(experiment).assign(user_id, groups)
