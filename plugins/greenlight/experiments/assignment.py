"""Deterministic branch assignment, compiled once per experiment state so the per-request cost is
one hash and two integer comparisons.

The hash: CRC-32 of the user id seeded with a per-experiment value, then MurmurHash3's 32-bit
finaliser. CRC-32 is C-fast but linear; the finaliser's multiplications make the bits avalanche,
so buckets are uniform and the buckets of two experiments behave as independent (both are
checked by chi-squared tests). The top 16 bits decide whether a user is inside the rollout, the
low 16 bits pick the branch: raising the rollout only adds users, and never moves anyone between
branches, since the branch bits do not depend on the percentage.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Iterable

from greenlight.experiments.definition import CLOSED, CONTROL, QA, ROLLOUT, Experiment

_MASK = 0xFFFFFFFF
_SPACE = 1 << 16  # resolution of rollout and weights: 1/65,536


def experiment_seed(name: str) -> int:
    """Per-experiment seed of the user hash: different experiments, independent assignments."""
    return zlib.crc32(b"greenlight-experiment:" + name.encode("utf-8"))


def user_hash(user_id: str, seed: int) -> int:
    """32 well-mixed bits for (experiment, user); stable across processes and machines."""
    h = zlib.crc32(user_id.encode("utf-8"), seed)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


class CompiledExperiment:
    """An experiment state turned into integer thresholds.

    ``assign(user_id, groups)`` returns ``(branch, counted)``: ``counted`` is True when the user
    was assigned (an exposure to record), False when they get a default without being part of
    the experiment (outside the rollout, not QA, or closed).
    """

    __slots__ = ("name", "seed", "mode", "rollout_cut", "cuts", "closed_branch",
                 "qa_users", "qa_groups", "experiment", "seen", "exposures", "seen_limit",
                 "rolling", "decided", "decided_limit")

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
        self.seen: set[str] = set()
        self.exposures = None
        self.seen_limit = 1_000_000
        # Decisions of this state (rollout only: QA depends on the groups of each call).
        # Never carried over to a new state, unlike ``seen``.
        self.decided: dict[str, str] = {}
        self.decided_limit = 500_000

    def recording_into(self, exposures, seen: set[str] | None = None) -> "CompiledExperiment":
        """Make :meth:`pick` append (experiment, user, branch, time) of each newly assigned
        user to ``exposures`` (anything with ``append``); ``seen`` carries over the users
        already recorded by this process, so a refresh does not re-record them."""
        self.exposures = exposures
        if seen is not None:
            self.seen = seen
        return self

    def pick(self, user_id: str, groups: Iterable[str] = (), _crc=zlib.crc32,
             _now=time.time) -> str:
        """:meth:`assign` plus exposure recording, inlined: this is the per-request hot path
        (about a microsecond for a new user, one dict lookup for a returning one), so it
        avoids every call and allocation it can."""
        if self.rolling:
            decided = self.decided
            branch = decided.get(user_id)
            if branch is not None:
                return branch
            if len(decided) >= self.decided_limit:
                decided.clear()
            h = _crc(user_id.encode(), self.seed)
            h ^= h >> 16
            h = (h * 0x85EBCA6B) & 0xFFFFFFFF
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & 0xFFFFFFFF
            h ^= h >> 16
            if (h >> 16) >= self.rollout_cut:
                decided[user_id] = CONTROL
                return CONTROL
            low = h & 0xFFFF
            branch = CONTROL
            for cut, name in self.cuts:
                if low < cut:
                    branch = name
                    break
            decided[user_id] = branch
        else:
            branch, counted = self.assign(user_id, groups)
            if not counted:
                return branch
        seen = self.seen
        if user_id not in seen:
            if len(seen) >= self.seen_limit:
                seen.clear()  # the store ignores duplicate exposures; this only saves writes
            seen.add(user_id)
            if self.exposures is not None:
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
        low = h & 0xFFFF
        for cut, branch in self.cuts:
            if low < cut:
                return branch, True
        return CONTROL, True


def assign(experiment: Experiment, user_id: str, groups: Iterable[str] = ()) -> tuple[str, bool]:
    """One-off assignment (compiles the experiment each time; the client caches compiled ones)."""
    return CompiledExperiment(experiment).assign(user_id, groups)
