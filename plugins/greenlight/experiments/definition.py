"""What an experiment is: a name, branches with weights (the rest is control) and a state —
QA/admin only, rolled out to N%, or closed on a branch — plus the sentence that tells an admin
what users get now. Pure data; the store persists it and the client compiles it."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from greenlight.errors import UsageError

CONTROL = "control"
QA = "qa"
ROLLOUT = "rollout"
CLOSED = "closed"
STATUSES = (QA, ROLLOUT, CLOSED)
DEFAULT_QA_GROUPS = ("qa", "admin")

MAX_ATTRIBUTES = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def check_name(name: str, what: str = "experiment name") -> str:
    """Names end up in URLs, SQL parameters and HTML: keep them to a safe, readable alphabet."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{what} {name!r} must be 1-100 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Experiment:
    """One experiment and its current state.

    ``branches`` maps each non-control branch to its weight (0 < w, sum ≤ 1); control gets the
    rest. ``rollout_pct`` is the share of users assigned to any branch (control included) while
    ``status`` is ``rollout``; in ``qa`` only ``qa_users`` and members of ``qa_groups`` are
    assigned; in ``closed`` everybody gets ``closed_branch``. ``planned_users`` (per branch) is
    the sample size the team committed to before reading results.
    """

    name: str
    branches: dict[str, float]
    status: str = QA
    rollout_pct: float = 0.0
    closed_branch: str | None = None
    qa_users: tuple[str, ...] = ()
    qa_groups: tuple[str, ...] = DEFAULT_QA_GROUPS
    planned_users: int | None = None
    description: str = ""
    updated_by: str | None = None
    updated_at: float | None = None
    version: int = 0
    extra: dict = field(default_factory=dict, compare=False)
    #: User attributes recorded with each exposure (a small fixed set, values are categories).
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name)
        if not self.branches:
            raise UsageError(f"experiment {self.name}: needs at least one branch besides "
                             "control, e.g. --branches enhanced=0.5")
        total = 0.0
        for branch, weight in self.branches.items():
            check_name(branch, "branch name")
            if branch == CONTROL:
                raise UsageError(f"experiment {self.name}: 'control' is implicit (it gets the "
                                 "weight left over); name only the other branches")
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
                raise UsageError(f"experiment {self.name}: weight of {branch} must be > 0 "
                                 f"(got {weight!r})")
            total += weight
        if total > 1.0 + 1e-9:
            raise UsageError(f"experiment {self.name}: weights sum to {total:g}, more than 1; "
                             "control gets 1 minus the sum")
        if self.status not in STATUSES:
            raise UsageError(f"experiment {self.name}: status {self.status!r} is not one of "
                             f"{', '.join(STATUSES)}")
        if not 0.0 <= self.rollout_pct <= 100.0:
            raise UsageError(f"experiment {self.name}: rollout must be 0-100% "
                             f"(got {self.rollout_pct:g})")
        if self.status == CLOSED and self.closed_branch not in self.all_branches():
            raise UsageError(f"experiment {self.name}: cannot close on {self.closed_branch!r}; "
                             f"branches are {', '.join(self.all_branches())}")
        if self.planned_users is not None and self.planned_users < 1:
            raise UsageError(f"experiment {self.name}: planned users must be >= 1")
        for attribute in self.attributes:
            check_name(attribute, f"experiment {self.name}: attribute name")
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise UsageError(f"experiment {self.name}: at most {MAX_ATTRIBUTES} attributes "
                             f"(got {len(self.attributes)}); attributes are a small fixed set")

    @property
    def control_weight(self) -> float:
        return max(0.0, 1.0 - sum(self.branches.values()))

    def all_branches(self) -> list[str]:
        """Control first, then the branches in their defined order."""
        return [CONTROL, *self.branches]

    def weights(self) -> dict[str, float]:
        return {CONTROL: self.control_weight, **self.branches}

    def with_state(self, **changes) -> "Experiment":
        return replace(self, **changes)

    def status_label(self) -> str:
        """The "experiment status" column of the admin table."""
        if self.status == QA:
            return "QA and admins only"
        if self.status == ROLLOUT:
            return f"Rolled out to {self.rollout_pct:g}%"
        return f"Closed on {self.closed_branch}"

    def collection_status(self) -> str:
        """The "experiment status" column: is the experiment still collecting data?"""
        if self.status == QA:
            return "in QA (not counted)"
        if self.status == CLOSED:
            return f"closed: {self.closed_branch} launched"
        return "running" if self.rollout_pct > 0 else "running, nobody assigned yet"


def explain(experiment: Experiment) -> str:
    """One sentence saying what users get now, as the admin table shows it."""
    e = experiment
    if e.status == QA:
        who = []
        if e.qa_users:
            who.append(f"{len(e.qa_users)} listed user" + ("s" if len(e.qa_users) != 1 else ""))
        if e.qa_groups:
            who.append("group " + ", ".join(e.qa_groups))
        listed = f" ({'; '.join(who)})" if who else ""
        return (f"QA and admins only{listed}: they are assigned at random to "
                f"{_split(e)}; everyone else sees control and is not counted.")
    if e.status == ROLLOUT:
        if e.rollout_pct <= 0:
            return "Rolled out to 0%: everyone sees control; nobody is assigned yet."
        if e.rollout_pct >= 100:
            return f"Rolled out to 100%: every user is assigned to {_split(e)}."
        return (f"Rolled out to {e.rollout_pct:g}%: {e.rollout_pct:g}% of users are assigned "
                f"to {_split(e)}; the other {100 - e.rollout_pct:g}% see control and are not "
                "counted.")
    return f"Closed on {e.closed_branch}: everybody sees {e.closed_branch}; nobody is assigned."


def _split(e: Experiment) -> str:
    parts = [f"{name} {weight * 100:g}%" for name, weight in e.weights().items() if weight > 0]
    return " / ".join(parts)


def parse_branches(text: str) -> dict[str, float]:
    """``enhanced=0.5,compact=0.25`` → {"enhanced": 0.5, "compact": 0.25}; a bare name gets an
    equal share with control."""
    branches: dict[str, float] = {}
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("--branches needs at least one NAME=WEIGHT, e.g. enhanced=0.5")
    for item in items:
        name, sep, weight = item.partition("=")
        name = name.strip()
        if not sep:
            value = 1.0 / (len(items) + 1)
        else:
            try:
                value = float(weight)
            except ValueError:
                raise UsageError(f"--branches: weight of {name!r} is not a number: "
                                 f"{weight!r}") from None
        if name in branches:
            raise UsageError(f"--branches: {name!r} given twice")
        branches[name] = value
    return branches
