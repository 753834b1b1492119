"""Gather the facts of one incident from the deploy ledger and git, then rank (``correlate``).

This is the engine's front door: ``build_report(incident, ledger, repo, settings)``. It only
reads; storing the incident and its report is the caller's choice (``store.IncidentStore``).
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from greenlight.incidents.correlate import Facts, rank
from greenlight.incidents.gitinfo import GitHistory, is_ancestor
from greenlight.incidents.intake import parse_duration
from greenlight.incidents.links import LinkTemplates
from greenlight.incidents.model import BlamedLine, Deploy, Incident, Report
from greenlight.incidents.traces import map_frames, parse_frames

DEFAULT_WINDOW = "6h"
_SIGNAL_KEYS = ("coverage", "new_lines_coverage", "schema_findings", "canary")


def _section(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Accept the whole settings mapping (``incidents`` table inside) or just that table."""
    settings = dict(settings or {})
    inner = settings.get("incidents")
    conf = dict(inner) if isinstance(inner, Mapping) else settings
    # The settings file's flat keys (link_preset, web_url, *_url) become the links table.
    links = dict(conf.get("links") or {})
    flat = {"link_preset": "preset", "web_url": "url", "commit_url": "commit",
            "compare_url": "compare", "blame_url": "blame"}
    for key, name in flat.items():
        if conf.get(key) and name not in links:
            links[name] = conf[key]
    conf["links"] = links
    return conf


def deploy_from_record(record: Any) -> Deploy:
    """Adapt a ledger ``DeployRecord`` (with events) to the engine's ``Deploy``.

    Pipeline signals come from event data when the deploy engine recorded them: a judge event
    marked ``close``, or coverage/schema figures copied from the build's properties.
    """
    signals: dict[str, Any] = {}
    for event in getattr(record, "events", []) or []:
        data = event.data if isinstance(event.data, dict) else {}
        for key in _SIGNAL_KEYS:
            if key in data and key != "canary":
                signals[key] = data[key]
        if data.get("close"):
            signals["canary"] = {"close": True,
                                 "detail": data.get("summary") or data.get("table")
                                 or f"{event.phase}: {data.get('outcome', '')}".strip()}
        close = _close_metrics(data) if event.phase == "judge" else []
        if close:
            signals["canary"] = {"close": True, "detail": "; ".join(close)}
    return Deploy(id=record.id, sha=record.sha, previous_sha=record.previous_sha,
                  started_at=record.started_at, finished_at=record.finished_at,
                  kind=record.kind, outcome=record.outcome, hosts=list(record.hosts),
                  signals=signals)


CLOSE_P = 0.25   # a passed canary whose metric came this near to significance was a close call


def _close_metrics(data: dict[str, Any]) -> list[str]:
    """Metrics of a *passed* judge verdict that were close to failing (adjusted p < CLOSE_P)."""
    verdict = data.get("verdict")
    if data.get("outcome") != "pass" or not isinstance(verdict, dict):
        return []
    close = []
    for metric in verdict.get("metrics") or []:
        if not isinstance(metric, dict) or metric.get("status") == "fail":
            continue
        p = metric.get("adjusted_p", metric.get("p_value"))
        if isinstance(p, (int, float)) and p < CLOSE_P:
            change = metric.get("relative_change")
            shown = f" {change:+.0%}" if isinstance(change, (int, float)) else ""
            close.append(f"{metric.get('name', '?')}{shown} (p={p:.2f})")
    return close


def build_report(incident: Incident, ledger: Any, repo: GitHistory | str | Path,
                 settings: Mapping[str, Any] | None = None) -> Report:
    """Correlate ``incident`` with the deploys before it and the commits they shipped.

    ``ledger`` is a ``greenlight.deploy.ledger.Ledger`` (or its URL); ``repo`` the deployed
    repository (path or ``GitHistory``); ``settings`` the ``incidents`` table: ``window``
    (default 6h), ``links`` (see ``links.py``), ``signals`` (sha -> pipeline signals).
    """
    conf = _section(settings)
    if isinstance(ledger, str):
        from greenlight.deploy.ledger import Ledger
        ledger = Ledger(ledger)
    history = repo if isinstance(repo, GitHistory) else GitHistory(repo)
    window = conf.get("window", DEFAULT_WINDOW)
    window = window if isinstance(window, timedelta) else parse_duration(str(window))
    links = LinkTemplates.from_settings(conf.get("links"))
    start = incident.started_at
    window_start = start - window
    notes: list[str] = []

    records = ledger.deploys_between(window_start, start, with_events=True)
    before = [deploy_from_record(r) for r in records if r.started_at <= start]
    after = [deploy_from_record(r) for r in ledger.deploys_between(start, start + window)
             if r.started_at > start]

    commits: dict[Any, list] = {}
    known: dict[str, bool] = {}
    ranges: dict[Any, tuple[str | None, str]] = {}
    for deploy in before + after:
        for sha in filter(None, (deploy.sha, deploy.previous_sha)):
            if sha not in known:
                known[sha] = history.has_commit(sha)
        commits[deploy.id] = []
        if not known[deploy.sha]:
            notes.append(f"deploy {deploy.id}: sha {deploy.sha[:12]} is not in the repository "
                         f"{history.path}; fetch it to see its commits")
        elif deploy.kind != "rollback":          # a rollback ships nothing new
            previous = deploy.previous_sha if deploy.previous_sha and known[deploy.previous_sha] \
                else None
            ranges[deploy.id] = (previous, deploy.sha)
    if ranges:
        with ThreadPoolExecutor(max_workers=min(8, len(ranges))) as pool:
            found = pool.map(lambda r: history.commits_between(*r), ranges.values())
            commits.update(zip(ranges.keys(), found))

    live = ledger.live_at(start)
    live_shas = [s for s in dict.fromkeys(live.values())
                 if known.setdefault(s, history.has_commit(s))]
    if not live_shas:
        serving = [d for d in before if d.kind != "rollback" and d.outcome in
                   ("success", "running", "superseded", None) and known.get(d.sha)]
        if serving:
            live_shas = [serving[-1].sha]
            notes.append(f"the ledger does not say what each host served at the start; "
                         f"taking deploy {serving[-1].id} ({serving[-1].sha[:12]}) as live")

    live_commits: set[str] | None = None
    if live and live_shas:
        live_commits = set()
        for deploy in before:
            if any(is_ancestor(history, deploy.sha, live_sha) for live_sha in live_shas):
                live_commits.update(c.sha for c in commits.get(deploy.id, []))

    frames, unmapped, blamed = [], [], []
    if incident.trace:
        parsed = parse_frames(incident.trace)
        if not parsed:
            notes.append("the stack trace has no frame this engine can read (Python "
                         "'File \"...\", line N' or 'path:line')")
        paths: set[str] = set()
        for sha in live_shas:
            paths.update(history.files_at(sha))
        frames, unmapped = map_frames(parsed, paths)
        blamed = _blame_frames(history, live_shas, frames, _window_boundary(before, known))

    signals = dict(conf.get("signals") or {})
    facts = Facts(incident=incident, window_start=window_start, deploys=before + after,
                  commits=commits, live=live, live_commits=live_commits, frames=frames,
                  unmapped_frames=unmapped, blame=blamed, signals=signals, notes=notes)
    return rank(facts, links)


def _window_boundary(before: list[Deploy], known: dict[str, bool]) -> str | None:
    """The sha live just before the window's first deploy: blame need not look past it.

    None (blame the whole history) when the first deploy has no previous sha in the repository.
    """
    shipping = [d for d in before if d.kind != "rollback"]
    if not shipping:
        return None
    first = min(shipping, key=lambda d: d.started_at)
    if first.previous_sha and known.get(first.previous_sha):
        return first.previous_sha
    return None


def _blame_frames(history: GitHistory, shas: list[str], frames: list,
                  since: str | None) -> list[BlamedLine]:
    """Blame every frame's line at every live sha: one git process per (sha, file), in parallel."""
    jobs: dict[tuple[str, str], list[int]] = {}
    for sha in shas:
        files = set(history.files_at(sha))
        for frame in frames:
            if frame.repo_path in files:
                jobs.setdefault((sha, frame.repo_path), []).append(frame.line)
    if not jobs:
        return []

    def run(job: tuple[tuple[str, str], list[int]]) -> list[BlamedLine]:
        (sha, path), lines = job
        return list(history.blame_lines(sha, path, lines, since).values())

    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        return [hit for hits in pool.map(run, jobs.items()) for hit in hits]
