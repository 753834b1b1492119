"""Plain data of the incident engine: what came in, what git and the ledger said, what we found.

Kept free of I/O so the correlation core and the renderers can be tested with literal values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from greenlight.git.history import BlamedLine, CommitInfo

__all__ = ["BlamedLine", "CommitInfo", "Deploy", "DeployEntry", "Evidence", "Frame",
           "Incident", "Report", "Suspect", "iso", "utc"]


def utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the ledger and git both speak UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return utc(moment).isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class Incident:
    """Something went wrong in production at ``started_at``; the rest is context."""

    title: str
    started_at: datetime
    source: str = "cli"              # alertmanager | json | cli | rollback
    service: str | None = None
    trace: str | None = None         # stack trace text, Python or "file:line" forms
    evidence: dict[str, Any] = field(default_factory=dict)   # alerts, failing metrics...
    id: int | None = None
    whys: list[str] = field(default_factory=list)            # saved 5 Whys answers

    def __post_init__(self) -> None:
        self.started_at = utc(self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "started_at": iso(self.started_at),
                "source": self.source, "service": self.service, "trace": self.trace,
                "evidence": self.evidence, "whys": list(self.whys)}


@dataclass(frozen=True)
class Frame:
    """One stack frame as the trace printed it, and the repository path it maps to (if any)."""

    path: str
    line: int
    function: str | None = None
    repo_path: str | None = None
    index: int = 0                   # position in the trace, 0 = outermost
    innermost: bool = False          # the last frame inside the repository: where it failed
    depth: int = 0                   # application frames between it and the innermost one
    library: bool = False            # a library/virtualenv frame: never blamed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Deploy:
    """One entry of the deploy ledger as the engine needs it (adapted from the ledger's rows)."""

    id: Any
    sha: str
    previous_sha: str | None
    started_at: datetime
    finished_at: datetime | None = None
    kind: str = "deploy"             # deploy | rollback
    outcome: str | None = None       # e.g. success, rolled_back, failed
    hosts: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)    # pipeline signals from the build

    def __post_init__(self) -> None:
        self.started_at = utc(self.started_at)
        self.finished_at = utc(self.finished_at) if self.finished_at else None

    @property
    def live_from(self) -> datetime:
        """When the deploy's code started serving: its finish if known, else its start."""
        return self.finished_at or self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sha": self.sha, "previous_sha": self.previous_sha,
                "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
                "kind": self.kind, "outcome": self.outcome, "hosts": list(self.hosts),
                "signals": self.signals}


@dataclass
class Evidence:
    """One reason a commit is suspected, with the points it earned: shown, never hidden."""

    kind: str            # time | blamed_line | changed_file | coverage | schema | canary | not_live
    points: float
    detail: str
    frame: Frame | None = None
    blame: BlamedLine | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": round(self.points, 2), "detail": self.detail,
                "frame": self.frame.to_dict() if self.frame else None,
                "blame": self.blame.to_dict() if self.blame else None, "url": self.url}


#: What a suspect's strongest evidence is; a higher tier always ranks first, whatever the points.
TIERS = {2: "owns a line of the trace", 1: "changed a file of the trace", 0: "deployed before"}


@dataclass
class Suspect:
    """A commit suspected of the incident, with the deploy that put it live.

    ``latent`` says how long before the incident that deploy went live when it lies outside the
    window (the commit was found by blame, not by time).
    """

    commit: CommitInfo
    deploy: Deploy
    score: float
    evidence: list[Evidence]
    url: str | None = None
    changed_links: list[dict[str, Any]] = field(default_factory=list)  # path, start, end, url
    tier: int = 0
    latent: str | None = None
    hidden_evidence: int = 0         # evidence rows left out of ``evidence`` (report cap)

    def to_dict(self) -> dict[str, Any]:
        return {"sha": self.commit.sha, "score": round(self.score, 2), "tier": self.tier,
                "tier_label": TIERS[self.tier], "latent": self.latent,
                "hidden_evidence": self.hidden_evidence,
                "deploy_id": self.deploy.id, "deployed_at": iso(self.deploy.live_from),
                "commit": self.commit.to_dict(), "url": self.url,
                "evidence": [e.to_dict() for e in self.evidence],
                "changed_lines": list(self.changed_links)}


@dataclass
class DeployEntry:
    """A deploy on the report's timeline, with the commits it shipped and its compare link."""

    deploy: Deploy
    commits: list[CommitInfo]
    position: str                    # before | after
    compare_url: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.deploy.to_dict(), "position": self.position,
                "compare_url": self.compare_url, "note": self.note,
                "commits": [{"sha": c.sha, "summary": c.summary, "author": c.author,
                             "email": c.email} for c in self.commits]}


@dataclass
class Report:
    incident: Incident
    window_start: datetime
    timeline: list[DeployEntry]
    suspects: list[Suspect]
    after: list[CommitInfo]
    live: dict[str, str]                         # host -> sha live at the incident's start
    frames: list[Frame]
    unmapped_frames: list[Frame]
    notes: list[str] = field(default_factory=list)
    whys: list[dict[str, str]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)   # sha -> commit URL
    horizon_start: datetime | None = None        # blame attributes commits live since then

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident.to_dict(),
                "window": {"start": iso(self.window_start), "end": iso(self.incident.started_at)},
                "horizon_start": iso(self.horizon_start),
                "live_at_start": dict(self.live),
                "timeline": [e.to_dict() for e in self.timeline],
                "suspects": [s.to_dict() for s in self.suspects],
                "after": [{"sha": c.sha, "summary": c.summary, "author": c.author,
                           "url": self.links.get(c.sha)} for c in self.after],
                "frames": [f.to_dict() for f in self.frames],
                "unmapped_frames": [f.to_dict() for f in self.unmapped_frames],
                "notes": list(self.notes), "five_whys": self.whys}
