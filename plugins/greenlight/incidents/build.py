"""Gather the facts of one incident from the deploy ledger and git, then rank (``correlate``).

This is the engine's front door: ``build_report(incident, ledger, repo, settings)``. It only
reads; storing the incident and its report is the caller's choice (``store.IncidentStore``).
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from greenlight.errors import UsageError
from greenlight.git.history import GitHistory
from greenlight.incidents.attribution import attribute, shipping_deploys
from greenlight.incidents.change_index import ChangeIndex
from greenlight.incidents.correlate import Facts, Weights, rank
from greenlight.incidents.intake import parse_duration
from greenlight.incidents.links import LinkTemplates
from greenlight.incidents.model import BlamedLine, Deploy, Incident, Report, iso
from greenlight.incidents.traces import map_frames, parse_frames

DEFAULT_WINDOW = "6h"
DEFAULT_HORIZON = "365d"
FUTURE_SLACK = timedelta(hours=1)    # clocks of alert sources drift; a day ahead is a typo
MAX_BLAMED_FRAMES = 20               # the innermost application frames blame reads
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


def check_start(start: datetime, now: datetime | None = None) -> None:
    """Refuse an incident that starts in the future: a typo (2062 for 2026) would otherwise
    yield a report over whatever was deployed last, as if it were the cause."""
    now = now or datetime.now(timezone.utc)
    if start > now + FUTURE_SLACK:
        raise UsageError(f"the incident starts at {iso(start)}, after now ({iso(now)}); "
                         f"give the time it started (ISO 8601, epoch seconds, 'now', '-30m')")


def build_report(incident: Incident, ledger: Any, repo: GitHistory | str | Path,
                 settings: Mapping[str, Any] | None = None,
                 weights: Weights | None = None) -> Report:
    """Correlate ``incident`` with the deploys before it and the commits they shipped.

    ``ledger`` is a ``greenlight.deploy.ledger.Ledger``; ``repo`` the deployed repository
    (path or ``GitHistory``); ``settings`` the ``incidents`` table: ``window`` (default 6h),
    ``horizon`` (how far back blame may attribute a line, default 365d), ``mechanical_commits``
    (shas blame sees through), ``links`` (see ``links.py``), ``signals`` (sha -> signals).

    Suspects are the commits deployed in the window, plus every commit blame names for an
    application frame's line at the live sha, attributed to the deploy that shipped it at any
    age up to the horizon or the ledger's start.
    """
    conf = _section(settings)
    start = incident.started_at
    check_start(start)
    history = repo if isinstance(repo, GitHistory) else GitHistory(
        repo, ignore_revs=conf.get("mechanical_commits") or ())
    engine = getattr(ledger, "engine", None)
    use_index = conf.get("change_index", True)       # True, False or "read" (never write)
    if history.changes is None and engine is not None and use_index:
        # A file's history in one query, not a walk in git.
        history.changes = ChangeIndex(engine, catch_up=use_index != "read")
    window = _duration(conf.get("window", DEFAULT_WINDOW))
    horizon = max(_duration(conf.get("horizon", DEFAULT_HORIZON)), window)
    links = LinkTemplates.from_settings(conf.get("links"))
    window_start, horizon_start = start - window, start - horizon
    notes: list[str] = []

    # One query for the whole horizon; events (pipeline signals) only for the few deploys
    # the report shows in full.
    records = ledger.deploys_between(horizon_start, start + window)
    every = [deploy_from_record(r) for r in records if r.started_at <= start]
    in_window = [d for d in every
                 if d.started_at >= window_start or (d.finished_at or start) >= window_start]
    before = [deploy_from_record(ledger.deploy(d.id)) for d in in_window]
    after = [deploy_from_record(ledger.deploy(r.id)) for r in records if r.started_at > start]

    commits: dict[Any, list] = {}
    ranges: dict[Any, tuple[str | None, str]] = {}
    for deploy in before + after:
        commits[deploy.id] = []
        if not history.has_commit(deploy.sha):
            notes.append(f"deploy {deploy.id}: sha {deploy.sha[:12]} is not in the repository "
                         f"{history.path}; fetch it to see its commits")
        elif deploy.kind != "rollback":          # a rollback ships nothing new
            previous = (deploy.previous_sha if deploy.previous_sha
                        and history.has_commit(deploy.previous_sha) else None)
            ranges[deploy.id] = (previous, deploy.sha)
    if ranges:
        with ThreadPoolExecutor(max_workers=min(4, len(ranges))) as pool:
            found = pool.map(lambda r: history.commits_between(*r), ranges.values())
            commits.update(zip(ranges.keys(), found))

    live = ledger.live_at(start)
    live_shas = [s for s in dict.fromkeys(live.values()) if history.has_commit(s)]
    if not live_shas:
        serving = [d for d in shipping_deploys(every) if history.has_commit(d.sha)]
        if serving:
            live_shas = [serving[-1].sha]
            notes.append(f"the ledger does not say what each host served at the start; "
                         f"taking deploy {serving[-1].id} ({serving[-1].sha[:12]}) as live")

    live_commits: set[str] | None = None
    if live and live_shas:
        live_commits = set()
        for deploy in before:
            if any(history.is_ancestor(deploy.sha, s) for s in live_shas):
                live_commits.update(c.sha for c in commits.get(deploy.id, []))

    frames, unmapped, blamed = [], [], []
    latent: list[tuple[Any, Deploy]] = []
    if incident.trace:
        parsed = parse_frames(incident.trace)
        if not parsed:
            notes.append("the stack trace has no frame this engine can read (Python "
                         "'File \"...\", line N' or 'path:line')")
        paths: set[str] = set()
        for sha in live_shas:
            paths.update(history.files_at(sha))
        frames, unmapped = map_frames(parsed, paths)
        boundary = _horizon_boundary(history, every)
        blamed = _blame_frames(history, live_shas, frames, boundary)
        older = sorted({f"{f.repo_path}:{f.line}" for f in frames
                        if f.depth < MAX_BLAMED_FRAMES
                        and not any(b.path == f.repo_path and b.line == f.line for b in blamed)})
        if boundary and older:
            notes.append(f"{', '.join(older[:10])}{' …' if len(older) > 10 else ''}: already "
                         f"in {boundary[:12]}, the code live before the first deploy the report "
                         f"reads (the horizon, {iso(horizon_start)}, or the ledger's start); "
                         f"not ranked. `greenlight deploys import` can add older deploys.")
        in_window_shas = {c.sha for d in before for c in commits.get(d.id, [])}
        latent = _attribute(history, blamed, every, in_window_shas, notes)

    facts = Facts(incident=incident, window_start=window_start, deploys=before + after,
                  commits=commits, live=live, live_commits=live_commits, frames=frames,
                  unmapped_frames=unmapped, blame=blamed, signals=dict(conf.get("signals") or {}),
                  notes=notes, latent=latent, horizon_start=horizon_start)
    return rank(facts, links, weights)


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(str(value))


def _attribute(history: GitHistory, blamed: list[BlamedLine], every: list[Deploy],
               in_window: set[str], notes: list[str]) -> list[tuple[Any, Deploy]]:
    """Each commit blame named, outside the window's commits, with the deploy that shipped it."""
    shipping = shipping_deploys(every)
    found: list[tuple[Any, Deploy]] = []
    for sha in dict.fromkeys(hit.commit for hit in blamed):
        if sha in in_window:
            continue
        answer = attribute(sha, shipping, history.is_ancestor)
        lines = ", ".join(sorted({f"{h.path}:{h.line}" for h in blamed if h.commit == sha}))
        if answer.status == "shipped":
            found.append((history.commit(sha), answer.deploy))
        elif answer.status == "before_start" and shipping:
            notes.append(f"{lines} was last changed by {sha[:12]}, live before the first deploy "
                         f"the report reads ({iso(shipping[0].live_from)}: the ledger's start "
                         f"or the horizon); not ranked. `greenlight deploys import` can add "
                         f"older deploys.")
        elif answer.status == "not_deployed":
            notes.append(f"{lines} was last changed by {sha[:12]}, which no deploy in the "
                         f"ledger contains; not ranked")
    return found


def _horizon_boundary(history: GitHistory, every: list[Deploy]) -> str | None:
    """The sha live before the first deploy the report reads (the horizon's or the ledger's
    start): blame need not walk past it, since an older line is not ranked. None when that
    deploy has no known previous sha (blame then walks to the root)."""
    shipping = shipping_deploys(every)
    previous = shipping[0].previous_sha if shipping else None
    return previous if previous and history.has_commit(previous) else None


def _blame_frames(history: GitHistory, shas: list[str], frames: list,
                  since: str | None = None) -> list[BlamedLine]:
    """Blame the innermost application frames' files whole at every live sha (one git process
    per file and sha, in parallel), keeping the frames' lines."""
    jobs: dict[tuple[str, str], list[int]] = {}
    for sha in shas:
        files = set(history.files_at(sha))
        for frame in frames:
            if frame.repo_path in files and frame.depth < MAX_BLAMED_FRAMES:
                jobs.setdefault((sha, frame.repo_path), []).append(frame.line)
    if not jobs:
        return []

    def run(job: tuple[tuple[str, str], list[int]]) -> list[BlamedLine]:
        (sha, path), lines = job
        return list(history.blame_lines(sha, path, lines, since).values())

    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        return [hit for hits in pool.map(run, jobs.items()) for hit in hits]
