"""``greenlight incident``: report on an incident, take an alert, list and show saved ones.

    greenlight incident report --at TIME [--trace FILE] [--window 6h] [--horizon 365d]
                               [--format md|json|html] [--repo DIR] [--ledger URL]
                               [--title T] [--service S] [--no-save]
    greenlight incident intake FILE [--content-type T]   # an Alertmanager/plain JSON body
    greenlight incident rollbacks                        # reports for the judge's rollbacks
    greenlight incident list
    greenlight incident show ID [--format md|json|html]
    greenlight incident why ID N ANSWER                  # save a 5 Whys answer (N = 1..5)

Every verb reads the watched repository and the ledger the settings name; --repo and --ledger
override them. Only parses arguments and prints; the work is in ``greenlight.incidents``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from greenlight.deploy.ledger import Ledger
from greenlight.errors import UsageError
from greenlight.git.history import GitHistory
from greenlight.incidents.build import build_report, check_start
from greenlight.incidents.ingest import ingest_rollbacks
from greenlight.incidents.intake import parse_intake, parse_time
from greenlight.incidents.model import Incident, iso
from greenlight.incidents.render import render
from greenlight.incidents.store import IncidentStore
from greenlight.settings import Settings, load


def _ledger_url(args: argparse.Namespace, settings: Settings) -> str:
    return args.ledger or settings.expand(settings["deploy"]["ledger_url"])


def open_ledger(url: str) -> Ledger:
    """The ledger at ``url``, which must exist: reading a ledger that is not there would
    create an empty one and report "no deploy in the window" about the wrong database."""
    if url.startswith("sqlite:///") and url not in ("sqlite:///", "sqlite:///:memory:"):
        path = Path(url[len("sqlite:///"):])
        if not path.is_file():
            raise UsageError(f"no deploy ledger at {path} (from {url}); pass --ledger URL, set "
                             f"[deploy] ledger_url, or fill one with `greenlight deploys import`")
    ledger = Ledger(url)
    if not url.startswith("sqlite") and ledger.last_deploy() is None:
        ledger.close()
        raise UsageError(f"the deploy ledger at {url} holds no deploy; pass --ledger URL or "
                         f"fill it with `greenlight deploys import`")
    return ledger


def _incident_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    conf = dict(settings["incidents"])
    for key in ("window", "horizon", "link_preset", "web_url"):
        if getattr(args, key, None):
            conf[key] = getattr(args, key)
    return conf


def _stores(args: argparse.Namespace) -> tuple[Settings, Ledger, IncidentStore]:
    settings = load(getattr(args, "settings", None))
    ledger = open_ledger(_ledger_url(args, settings))
    return settings, ledger, IncidentStore(engine=ledger.engine)


def _history(args: argparse.Namespace, settings: Settings) -> GitHistory:
    """The deployed repository: --repo, else the watched one from the settings (never the
    current directory: the project checkout is not the repository that was deployed)."""
    conf = settings["incidents"]
    return GitHistory(args.repo or settings.repo_url,
                      ignore_revs=conf.get("mechanical_commits") or ())


def _emit(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _report_and_print(incident: Incident, args: argparse.Namespace, settings: Settings,
                      ledger: Ledger, store: IncidentStore) -> int:
    with _history(args, settings) as history:
        report = build_report(incident, ledger, history, _incident_settings(args, settings))
    if getattr(args, "save", True):
        store.save(incident, report.to_dict())
        report.incident.id = incident.id
    _emit(render(report, args.format), args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    trace = None
    if args.trace:
        try:
            trace = sys.stdin.read() if args.trace == "-" else Path(args.trace).read_text(
                encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"--trace {args.trace}: cannot read: {exc.strerror}") from None
    try:
        started = parse_time(args.at)
        check_start(started)
    except UsageError as exc:
        raise UsageError(f"--at: {exc}") from None
    incident = Incident(title=args.title or f"incident at {args.at}", started_at=started,
                        source="cli", service=args.service, trace=trace)
    settings, ledger, store = _stores(args)
    return _report_and_print(incident, args, settings, ledger, store)


def cmd_intake(args: argparse.Namespace) -> int:
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from None
    try:
        incident = parse_intake(body, args.content_type)
    except UsageError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    settings, ledger, store = _stores(args)
    return _report_and_print(incident, args, settings, ledger, store)


def cmd_rollbacks(args: argparse.Namespace) -> int:
    """Open a report for every open incident request of the deploy judge (idempotent)."""
    settings, ledger, store = _stores(args)
    conf = _incident_settings(args, settings)
    with _history(args, settings) as history:
        done = ingest_rollbacks(ledger, store, lambda i: build_report(i, ledger, history, conf))
    for item in done:
        if item.report is None:
            print(f"incident {item.incident.id}: {item.incident.title} (no report: "
                  f"{item.error})")
            continue
        top = item.report.suspects[0].commit.sha[:12] if item.report.suspects else "none"
        print(f"incident {item.incident.id}: {item.incident.title} (top suspect {top})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, _, store = _stores(args)
    for incident in store.list(limit=args.limit):
        print(f"{incident.id}\t{iso(incident.started_at)}\t{incident.source}\t{incident.title}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    settings, ledger, store = _stores(args)
    incident = store.get(args.id)
    with _history(args, settings) as history:
        report = build_report(incident, ledger, history, _incident_settings(args, settings))
    _emit(render(report, args.format), args.output)
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= 5:
        raise UsageError(f"why number {args.n} is out of range; use 1 to 5")
    _, _, store = _stores(args)
    incident = store.get(args.id)
    answers = list(incident.whys) + [""] * (5 - len(incident.whys))
    answers[args.n - 1] = args.answer
    while answers and not answers[-1]:
        answers.pop()
    store.save_whys(args.id, answers)
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("incident", help="incident reports: deploys, suspects, blame",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="incident_verb", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])

    def common(p: argparse.ArgumentParser, report: bool = True) -> None:
        p.add_argument("--ledger", help="SQLAlchemy URL of the deploy ledger (default: "
                       "[deploy] ledger_url of the settings); it must exist")
        p.add_argument("--settings", help="settings file (default: $GREENLIGHT_SETTINGS or "
                       "the one `greenlight up` started with)")
        if report:
            p.add_argument("--repo", help="the deployed git repository (default: the watched "
                           "repository of the settings, [repository] url)")
            p.add_argument("--window", help="deploys this long before the start are suspects "
                           "(default: [incidents] window, 6h)")
            p.add_argument("--horizon", help="how far back blame attributes a trace line to "
                           "the deploy that shipped it (default: [incidents] horizon, 365d)")
            p.add_argument("--format", choices=("md", "json", "html"), default="md")
            p.add_argument("--output", "-o", help="write the report to this file")
            p.add_argument("--link-preset", choices=("github", "gitlab", "gitea", "cgit"))
            p.add_argument("--web-url", help="the repository's web URL for links")

    p = verbs.add_parser("report", help="correlate an incident with deploys and commits")
    p.add_argument("--at", required=True, help="when it started: ISO 8601, epoch, now, -30m")
    p.add_argument("--trace", help="file holding the stack trace ('-' = stdin)")
    p.add_argument("--title")
    p.add_argument("--service")
    p.add_argument("--no-save", dest="save", action="store_false",
                   help="do not store the incident")
    common(p)
    p.set_defaults(func=cmd_report)

    p = verbs.add_parser("intake", help="take an Alertmanager webhook or plain JSON body")
    p.add_argument("file", help="the JSON body ('-' = stdin)")
    p.add_argument("--content-type", default="application/json")
    common(p)
    p.set_defaults(func=cmd_intake, save=True)

    p = verbs.add_parser("rollbacks", help="report on the deploy judge's open incident requests")
    common(p)
    p.set_defaults(func=cmd_rollbacks)

    p = verbs.add_parser("list", help="saved incidents, newest first")
    p.add_argument("--limit", type=int, default=50)
    common(p, report=False)
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("show", help="the report of a saved incident")
    p.add_argument("id", type=int)
    common(p)
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser("why", help="save a 5 Whys answer")
    p.add_argument("id", type=int)
    p.add_argument("n", type=int, help="1 to 5")
    p.add_argument("answer")
    common(p, report=False)
    p.set_defaults(func=cmd_why)
