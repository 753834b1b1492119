"""Rank the commits deployed before an incident by how suspicious they are, showing why.

Pure: the deploys, their commits, the blame of the failing lines and the pipeline's signals come
in as data (see ``build.py`` for where they come from); a ``Report`` comes out. Points are additive
and every point is carried by an ``Evidence`` with a sentence a human can check.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from greenlight.incidents.links import LinkTemplates
from greenlight.incidents.model import (
    BlamedLine,
    CommitInfo,
    Deploy,
    DeployEntry,
    Evidence,
    Frame,
    Incident,
    Report,
    Suspect,
    iso,
)


@dataclass(frozen=True)
class Weights:
    """How many points each kind of evidence earns. The blamed line dominates on purpose."""

    blamed_innermost: float = 60.0   # the line that raised was last changed by the commit
    blamed_frame: float = 25.0       # another frame's line was last changed by the commit
    changed_file_innermost: float = 12.0
    changed_file: float = 6.0
    time_max: float = 10.0           # a deploy right before the incident
    time_half_life_h: float = 1.0    # ... halving every hour
    rolled_back: float = 15.0        # the deploy judge rolled this deploy back
    coverage_max: float = 8.0        # new lines entirely uncovered
    coverage_ok: float = 0.8         # at or above this fraction, no points
    schema_each: float = 4.0
    schema_cap: float = 12.0
    canary_close: float = 6.0
    keyword: float = 5.0             # changed lines name what failed (metric, endpoint)
    not_live_factor: float = 0.5     # commit no longer live at the start (rolled back before)


@dataclass
class Facts:
    """Everything the ranking needs, gathered by the I/O layer."""

    incident: Incident
    window_start: datetime
    deploys: list[Deploy]                              # window before start + after, any order
    commits: Mapping[Any, list[CommitInfo]]            # deploy id -> commits shipped
    live: dict[str, str] = field(default_factory=dict)  # host -> sha at the start
    live_commits: set[str] | None = None               # reachable from live code; None = unknown
    frames: list[Frame] = field(default_factory=list)  # mapped onto the repository
    unmapped_frames: list[Frame] = field(default_factory=list)
    blame: list[BlamedLine] = field(default_factory=list)  # failing lines blamed at live shas
    signals: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # sha -> signals
    notes: list[str] = field(default_factory=list)


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


def _where(frame: Frame) -> str:
    func = f" in {frame.function}" if frame.function else ""
    return f"{frame.repo_path}:{frame.line}{func}"


def _path_aliases(commits: list[CommitInfo]) -> dict[str, set[str]]:
    """Old path -> every later name of the file, so a change before a rename still counts."""
    aliases: dict[str, set[str]] = {}
    for commit in commits:
        for new, old in commit.renamed_from.items():
            aliases.setdefault(old, {old}).add(new)
    changed = True
    while changed:                      # chains of renames: a -> b -> c
        changed = False
        for names in aliases.values():
            for name in list(names):
                extra = aliases.get(name, set()) - names
                if extra:
                    names |= extra
                    changed = True
    return aliases


def _signal_evidence(signals: Mapping[str, Any], scope: str, w: Weights) -> list[Evidence]:
    """Pipeline signals (coverage of new lines, schema findings, a close canary) as evidence."""
    found: list[Evidence] = []
    coverage = signals.get("coverage", signals.get("new_lines_coverage"))
    if isinstance(coverage, (int, float)):
        fraction = coverage / 100.0 if coverage > 1 else float(coverage)
        if fraction < w.coverage_ok:
            found.append(Evidence("coverage", w.coverage_max * (1 - fraction),
                                  f"new lines {fraction:.0%} covered by tests{scope}"))
    findings = signals.get("schema_findings")
    if isinstance(findings, int):
        findings = [f"{findings} finding(s)"] if findings else []
    if findings:
        points = min(w.schema_cap, w.schema_each * len(findings))
        shown = "; ".join(str(f) for f in list(findings)[:3])
        found.append(Evidence("schema", points, f"schema review findings{scope}: {shown}"))
    canary = signals.get("canary")
    if isinstance(canary, Mapping) and canary.get("close"):
        detail = canary.get("detail") or canary.get("verdict") or "close call"
        found.append(Evidence("canary", w.canary_close,
                              f"canary verdict was close{scope}: {detail}"))
    return found


_STOPWORDS = {"total", "rate", "count", "demo", "request", "second", "duration", "error",
              "drop", "high", "bucket", "ratio", "fail", "failed", "http", "status", "code",
              "latency", "alert", "canary", "judge", "increase", "sum", "info", "the", "instance",
              "service", "job", "page", "severity", "warning", "critical", "health"}


def _words(text: str) -> set[str]:
    """Subject words of a metric or alert name: ``demo_logins_total`` -> {"login"}."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(text))
    words = set()
    for word in re.split(r"[^A-Za-z]+", text.lower()):
        word = word[:-1] if word.endswith("s") and len(word) > 4 else word
        if len(word) >= 4 and word not in _STOPWORDS:
            words.add(word)
    return words


def failing_subjects(incident: Incident) -> dict[str, str]:
    """Word -> where it came from: failing judge metrics, alert names and endpoint labels."""
    found: dict[str, str] = {}
    evidence = incident.evidence or {}
    verdict = evidence.get("verdict")
    if isinstance(verdict, Mapping):
        for metric in verdict.get("metrics") or []:
            if isinstance(metric, Mapping) and metric.get("status") == "fail":
                for word in _words(metric.get("name", "")):
                    found.setdefault(word, f"failing metric {metric.get('name')}")
    for alert in evidence.get("alerts") or []:
        labels = alert.get("labels") if isinstance(alert, Mapping) else None
        for key in ("alertname", "endpoint", "handler", "path", "route"):
            if isinstance(labels, Mapping) and labels.get(key):
                for word in _words(labels[key]):
                    found.setdefault(word, f"alert {key}={labels[key]}")
    return found


def rank(facts: Facts, links: LinkTemplates | None = None,
         weights: Weights | None = None) -> Report:
    """Build the report: timeline, suspects ranked by score, commits deployed after the start."""
    w = weights or Weights()
    links = links or LinkTemplates()
    start = facts.incident.started_at
    deploys = sorted(facts.deploys, key=lambda d: d.started_at)
    before = [d for d in deploys if d.started_at <= start]
    after = [d for d in deploys if d.started_at > start]

    # The latest deploy before the start that shipped each commit decides its time evidence.
    shipped: dict[str, tuple[CommitInfo, Deploy]] = {}
    for deploy in before:
        for commit in facts.commits.get(deploy.id, []):
            shipped[commit.sha] = (commit, deploy)
    all_before = [c for c, _ in shipped.values()]
    aliases = _path_aliases(all_before)
    blame_by_commit: dict[str, list[BlamedLine]] = {}
    for hit in facts.blame:
        blame_by_commit.setdefault(hit.commit, []).append(hit)
    frames_by_line = {(f.repo_path, f.line): f for f in facts.frames}
    frames_by_path: dict[str, list[Frame]] = {}
    for frame in facts.frames:
        frames_by_path.setdefault(frame.repo_path or "", []).append(frame)

    subjects = failing_subjects(facts.incident)
    suspects: list[Suspect] = []
    for commit, deploy in shipped.values():
        evidence: list[Evidence] = []
        delta = start - deploy.live_from
        if delta.total_seconds() >= 0:
            hours = delta.total_seconds() / 3600
            evidence.append(Evidence("time", w.time_max * 0.5 ** (hours / w.time_half_life_h),
                                     f"deployed {_ago(delta)} before the incident "
                                     f"(deploy {deploy.id}, {iso(deploy.live_from)})"))
        else:
            evidence.append(Evidence("time", w.time_max,
                                     f"deploy {deploy.id} was still rolling out when the "
                                     f"incident started"))
        seen_lines = set()
        for hit in sorted(blame_by_commit.get(commit.sha, []), key=lambda b: (b.path, b.line)):
            frame = frames_by_line.get((hit.path, hit.line))
            if frame is None or (hit.path, hit.line) in seen_lines:
                continue
            seen_lines.add((hit.path, hit.line))
            points = w.blamed_innermost if frame.innermost else w.blamed_frame
            renamed = f" (as {hit.orig_path}:{hit.orig_line})" if hit.orig_path != hit.path else ""
            evidence.append(Evidence(
                "blamed_line", points,
                f"{_where(frame)}{' (where it failed)' if frame.innermost else ''} was last "
                f"changed by this commit{renamed}, blame at {hit.at_sha[:12]}: "
                f"{hit.text.strip()[:120]}",
                frame=frame, blame=hit, url=links.blame_url(hit.at_sha, hit.path, hit.line)))
        for path, ranges in commit.changed.items():
            names = aliases.get(path, {path}) | {path}
            hit_frames = [f for name in names for f in frames_by_path.get(name, [])]
            if not hit_frames:
                continue
            innermost = any(f.innermost for f in hit_frames)
            lines = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:6]) or "renamed"
            shown = ", ".join(sorted({str(f.line) for f in hit_frames}, key=int))
            evidence.append(Evidence(
                "changed_file", w.changed_file_innermost if innermost else w.changed_file,
                f"changed {path} (lines {lines}), a file of the trace (frame lines {shown})",
                url=(links.blame_url(commit.sha, path, ranges[0][0]) if ranges
                     else links.commit_url(commit.sha))))
        for word, origin in subjects.items():
            hit = next((p for p in commit.changed if word in p.lower()), None) or next(
                (t.strip() for t in commit.added if word in t.lower()), None)
            if hit:
                evidence.append(Evidence("keyword", w.keyword,
                                         f"its change mentions '{word}' ({origin}): "
                                         f"{hit[:100]}"))
                break
        # Signals keyed by a deploy's sha (its build covered the whole range) count for every
        # commit it shipped; signals keyed by another commit's sha are that commit's own.
        if commit.sha != deploy.sha:
            evidence += _signal_evidence(facts.signals.get(commit.sha) or {}, "", w)
        deploy_signals = {**deploy.signals, **(facts.signals.get(deploy.sha) or {})}
        evidence += _signal_evidence(deploy_signals, f" (deploy {deploy.id}'s range)", w)
        if deploy.outcome in ("rolled_back", "rolledback", "rollback"):
            evidence.append(Evidence("rolled_back", w.rolled_back,
                                     f"deploy {deploy.id} was rolled back"))
        score = sum(e.points for e in evidence)
        if facts.live_commits is not None and commit.sha not in facts.live_commits:
            penalty = -score * (1 - w.not_live_factor)
            evidence.append(Evidence("not_live", penalty,
                                     "not in the code live at the incident's start "
                                     "(rolled back or replaced before it)"))
            score += penalty
        suspects.append(Suspect(commit=commit, deploy=deploy, score=score, evidence=evidence,
                                url=links.commit_url(commit.sha),
                                changed_links=_changed_links(commit, links)))
    suspects.sort(key=lambda s: (-s.score, -s.deploy.live_from.timestamp(),
                                 -s.commit.authored_at.timestamp()))

    after_commits = []
    for deploy in after:
        for commit in facts.commits.get(deploy.id, []):
            if commit.sha not in shipped and commit.sha not in {c.sha for c in after_commits}:
                after_commits.append(commit)

    timeline = []
    for deploy in deploys:
        note = None
        if deploy.kind == "rollback":
            note = (f"rollback from {deploy.previous_sha[:12]} to {deploy.sha[:12]}"
                    if deploy.previous_sha else f"rollback to {deploy.sha[:12]}")
        timeline.append(DeployEntry(deploy=deploy, commits=list(facts.commits.get(deploy.id, [])),
                                    position="before" if deploy.started_at <= start else "after",
                                    compare_url=links.compare_url(deploy.previous_sha, deploy.sha),
                                    note=note))

    notes = list(facts.notes)
    if not before:
        notes.insert(0, f"No deploy in the window before the incident (from "
                        f"{iso(facts.window_start)} to {iso(start)}): no commit to suspect. "
                        f"Look outside the code: traffic, data, infrastructure, a wider --window.")
    if not facts.incident.trace and suspects:
        notes.append("No stack trace given: suspects are ranked by deploy time and pipeline "
                     "signals only.")
    elif not facts.frames:
        notes.append("The stack trace has no frame inside this repository.")
    commit_links = {}
    for entry in timeline:
        for commit in entry.commits:
            url = links.commit_url(commit.sha)
            if url:
                commit_links[commit.sha] = url
    return Report(incident=facts.incident, window_start=facts.window_start, timeline=timeline,
                  suspects=suspects, after=after_commits, live=dict(facts.live),
                  frames=list(facts.frames), unmapped_frames=list(facts.unmapped_frames),
                  notes=notes, whys=five_whys(facts.incident), links=commit_links)


def _changed_links(commit: CommitInfo, links: LinkTemplates, cap: int = 20) -> list[dict]:
    """Each changed range of the commit, linked at the commit's own sha (its line numbers)."""
    out = []
    for path, ranges in commit.changed.items():
        for start, end in ranges or [(0, 0)]:
            if len(out) >= cap:
                return out
            url = (links.blame_url(commit.sha, path, start) if start
                   else links.commit_url(commit.sha))
            out.append({"path": path, "start": start, "end": end, "url": url})
    return out


def five_whys(incident: Incident) -> list[dict[str, str]]:
    """The 5 Whys skeleton: why #1 is the alert itself; saved answers fill the rest."""
    first = f"{incident.title} (started {iso(incident.started_at)}"
    first += f", service {incident.service})" if incident.service else ")"
    answers = [first] + [""] * 4
    for i, saved in enumerate(incident.whys[:5]):
        if saved:
            answers[i] = saved
    return [{"question": f"Why #{i + 1}?", "answer": a} for i, a in enumerate(answers)]
