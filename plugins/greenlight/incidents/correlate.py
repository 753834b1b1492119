"""Rank the commits deployed before an incident by how suspicious they are, showing why.

Pure: the deploys, their commits, the blame of the failing lines and the pipeline's signals come
in as data (see ``build.py`` for where they come from); a ``Report`` comes out. Points are additive
and every point is carried by an ``Evidence`` with a sentence a human can check.

Suspects rank by evidence class first (``model.TIERS``): a commit that owns a line of the trace
outranks one that only changed a file of the trace, which outranks one that was merely deployed
before; points order suspects within a class, recency breaks ties. So a recent deploy that
touched no file of the trace can never push the owner of the failing line down, however many
time or pipeline-signal points it collects.
"""
from __future__ import annotations

import math
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

    blamed_line: float = 60.0        # the innermost application frame's line is the commit's
    depth_decay: float = 0.7         # ... each frame further out counts this much less
    owned_cap: float = 1.5           # a commit's trace lines together weigh at most this much
    further_frames: float = 0.5      # a commit's frames after its innermost one count this much
    age_scale_days: float = 30.0     # a line's points shrink with the age of the deploy that
    age_strength: float = 0.5        # shipped it: 1 / (1 + strength * log2(1 + age / scale))
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
    # Commits blame named that went live before the window, with the deploy that shipped each.
    latent: list[tuple[CommitInfo, Deploy]] = field(default_factory=list)
    horizon_start: datetime | None = None


#: Caps on what a report carries; what is left out is counted in a note, never dropped silently.
MAX_SUSPECTS = 25
MAX_EVIDENCE = 8
MAX_FRAMES = 40


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes // (24 * 60)} days"


def _where(frame: Frame) -> str:
    func = f" in {frame.function}" if frame.function else ""
    return f"{frame.repo_path}:{frame.line}{func}"


def age_factor(age: timedelta, w: Weights) -> float:
    """How much a blamed line's points keep with the age of the deploy that shipped it.

    Lines that served for years without failing are less likely to be the cause than lines
    that went live recently; the decay is logarithmic so a latent bug weeks old keeps most of
    its weight (12 days: 0.80; 1 year: 0.35 with the default weights).
    """
    days = max(age.total_seconds(), 0.0) / 86400
    return 1.0 / (1.0 + w.age_strength * math.log2(1.0 + days / w.age_scale_days))


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


def _suspect(commit: CommitInfo, deploy: Deploy, facts: Facts, ctx: dict[str, Any],
             w: Weights, links: LinkTemplates) -> Suspect:
    """One suspect's evidence and score: blamed lines, trace files, keywords, signals, time."""
    start = facts.incident.started_at
    evidence: list[Evidence] = []
    delta = start - deploy.live_from
    latent = None
    if deploy.live_from < facts.window_start:
        latent = f"latent: went live {_ago(delta)} before the incident"
    tier = 0
    seen_lines = set()
    owned = []
    for hit in ctx["blame_by_commit"].get(commit.sha, []):
        frame = ctx["frames_by_line"].get((hit.path, hit.line))
        if frame is None or (hit.path, hit.line) in seen_lines:
            continue
        seen_lines.add((hit.path, hit.line))
        owned.append((frame, hit))
    # A commit's lines together weigh at most 1.5 times the failing line alone: a commit
    # that wrote much of the old code (an initial import) owns many outer frames without
    # being more suspect for each.
    total = sum(w.depth_decay ** frame.depth for frame, _ in owned)
    scale = min(1.0, w.owned_cap / total) if total else 1.0
    for n, (frame, hit) in enumerate(sorted(owned, key=lambda p: p[0].depth)):
        tier = 2
        depth_weight = w.depth_decay ** frame.depth * scale
        capped = f" (x{scale:.2f}: its lines weigh {w.owned_cap:g} at most)" if scale < 1 else ""
        if n and w.further_frames != 1:
            # Each further frame of the same commit adds less: a refactor that rewrote two
            # callers (0.7 + 0.49) must not outweigh the commit that wrote the failing line
            # (1.0) of about the same age.
            depth_weight *= w.further_frames
            capped += f" (x{w.further_frames:g}: another frame of the same commit)"
        fresh = age_factor(delta, w)
        # Blame followed the line to the file it was written in (a move or copy across files).
        moved = (f" (written in {hit.orig_path}:{hit.orig_line}, moved since)"
                 if hit.orig_path != hit.path else "")
        where = " (where it failed)" if frame.innermost else f" ({frame.depth} frame(s) out)"
        evidence.append(Evidence(
            "blamed_line", w.blamed_line * depth_weight * fresh,
            f"{_where(frame)}{where} was last changed by this commit{moved}, blame -w -M -C at "
            f"{hit.at_sha[:12]}: {hit.text.strip()[:120]} [weight {depth_weight:.2f} for depth "
            f"{frame.depth}{capped} x {fresh:.2f} for the age of deploy {deploy.id}]",
            frame=frame, blame=hit, url=links.blame_url(hit.at_sha, hit.path, hit.line)))
    # One row for every file of the trace the commit changed: touching many of them (a large
    # refactor) is not more evidence than touching the one that failed.
    touched = []
    for path in commit.changed:
        names = ctx["aliases"].get(path, {path}) | {path}
        hit_frames = [f for name in names for f in ctx["frames_by_path"].get(name, [])]
        if hit_frames:
            touched.append((path, hit_frames))
    if touched:
        tier = max(tier, 1)
        innermost = any(f.innermost for _, frames in touched for f in frames)
        touched.sort(key=lambda t: min(f.depth for f in t[1]))
        parts = [f"{path} ({commit.describe_change(path)}; frame lines "
                 f"{', '.join(sorted({str(f.line) for f in frames}, key=int))})"
                 for path, frames in touched[:5]]
        more = f" and {len(touched) - 5} more" if len(touched) > 5 else ""
        path = touched[0][0]
        ranges = commit.changed[path]
        evidence.append(Evidence(
            "changed_file", w.changed_file_innermost if innermost else w.changed_file,
            f"changed {len(touched)} file(s) of the trace: {'; '.join(parts)}{more}",
            url=(links.blame_url(commit.sha, path, ranges[0][0]) if ranges
                 else links.commit_url(commit.sha))))
    for word, origin in ctx["subjects"].items():
        hit = next((p for p in commit.changed if word in p.lower()), None) or next(
            (t.strip() for t in commit.added if word in t.lower()), None)
        if hit:
            evidence.append(Evidence("keyword", w.keyword,
                                     f"its change mentions '{word}' ({origin}): {hit[:100]}"))
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
    if delta.total_seconds() >= 0:
        hours = delta.total_seconds() / 3600
        evidence.append(Evidence("time", w.time_max * 0.5 ** (hours / w.time_half_life_h),
                                 f"deployed {_ago(delta)} before the incident "
                                 f"(deploy {deploy.id}, {iso(deploy.live_from)})"))
    else:
        evidence.append(Evidence("time", w.time_max, f"deploy {deploy.id} was still rolling "
                                                     f"out when the incident started"))
    score = sum(e.points for e in evidence)
    if (facts.live_commits is not None and commit.sha not in facts.live_commits
            and tier < 2):
        penalty = -score * (1 - w.not_live_factor)
        evidence.append(Evidence("not_live", penalty,
                                 "not in the code live at the incident's start "
                                 "(rolled back or replaced before it)"))
        score += penalty
    return Suspect(commit=commit, deploy=deploy, score=score, evidence=evidence,
                   url=links.commit_url(commit.sha), changed_links=_changed_links(commit, links),
                   tier=tier, latent=latent)


def rank(facts: Facts, links: LinkTemplates | None = None,
         weights: Weights | None = None) -> Report:
    """Build the report: timeline, suspects ranked by evidence, commits deployed after."""
    w = weights or Weights()
    links = links or LinkTemplates()
    start = facts.incident.started_at
    deploys = sorted(facts.deploys, key=lambda d: d.started_at)
    before = [d for d in deploys if d.started_at <= start]
    after = [d for d in deploys if d.started_at > start]

    # The latest deploy before the start that shipped each commit decides its time evidence;
    # commits blame found outside the window come with the deploy that first shipped them.
    shipped: dict[str, tuple[CommitInfo, Deploy]] = {}
    for commit, deploy in facts.latent:
        shipped[commit.sha] = (commit, deploy)
    for deploy in before:
        for commit in facts.commits.get(deploy.id, []):
            shipped[commit.sha] = (commit, deploy)
    blame_by_commit: dict[str, list[BlamedLine]] = {}
    for hit in sorted(facts.blame, key=lambda b: (b.path, b.line)):
        blame_by_commit.setdefault(hit.commit, []).append(hit)
    frames_by_path: dict[str, list[Frame]] = {}
    for frame in facts.frames:
        frames_by_path.setdefault(frame.repo_path or "", []).append(frame)
    ctx = {"blame_by_commit": blame_by_commit,
           "frames_by_line": {(f.repo_path, f.line): f for f in facts.frames},
           "frames_by_path": frames_by_path,
           "aliases": _path_aliases([c for c, _ in shipped.values()]),
           "subjects": failing_subjects(facts.incident)}

    suspects = [_suspect(commit, deploy, facts, ctx, w, links)
                for commit, deploy in shipped.values()]
    suspects.sort(key=lambda s: (-s.tier, -s.score, -s.deploy.live_from.timestamp(),
                                 -s.commit.authored_at.timestamp()))
    notes = list(facts.notes)
    if len(suspects) > MAX_SUSPECTS:
        notes.append(f"{len(suspects) - MAX_SUSPECTS} more suspect(s) with lower scores are "
                     f"not shown (the report keeps the first {MAX_SUSPECTS}).")
        suspects = suspects[:MAX_SUSPECTS]
    for suspect in suspects:
        if len(suspect.evidence) > MAX_EVIDENCE:
            kept = sorted(suspect.evidence, key=lambda e: -abs(e.points))[:MAX_EVIDENCE]
            suspect.hidden_evidence = len(suspect.evidence) - MAX_EVIDENCE
            suspect.evidence = [e for e in suspect.evidence if e in kept]

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

    if not before and not facts.latent:
        notes.insert(0, f"No deploy in the window before the incident (from "
                        f"{iso(facts.window_start)} to {iso(start)}) and no line of the trace "
                        f"blamed on a deployed commit: no commit to suspect. Look outside the "
                        f"code: traffic, data, infrastructure.")
    if not facts.incident.trace and suspects:
        notes.append("No stack trace given: suspects are ranked by deploy time and pipeline "
                     "signals only.")
    elif facts.incident.trace and not facts.frames:
        notes.append("The stack trace has no application frame inside this repository.")
    frames, unmapped = list(facts.frames), list(facts.unmapped_frames)
    if len(frames) + len(unmapped) > MAX_FRAMES:
        hidden = len(frames) + len(unmapped) - MAX_FRAMES
        frames = frames[-MAX_FRAMES:]                      # the innermost ones matter most
        unmapped = unmapped[-max(0, MAX_FRAMES - len(frames)):] if len(frames) < MAX_FRAMES \
            else []
        notes.append(f"{hidden} outer stack frame(s) are not shown (the report keeps the "
                     f"{MAX_FRAMES} innermost).")
    commit_links = {}
    for sha in [c.sha for e in timeline for c in e.commits] + [s.commit.sha for s in suspects]:
        url = links.commit_url(sha)
        if url:
            commit_links[sha] = url
    return Report(incident=facts.incident, window_start=facts.window_start, timeline=timeline,
                  suspects=suspects, after=after_commits, live=dict(facts.live),
                  frames=frames, unmapped_frames=unmapped, notes=notes,
                  whys=five_whys(facts.incident), links=commit_links,
                  horizon_start=facts.horizon_start)


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
