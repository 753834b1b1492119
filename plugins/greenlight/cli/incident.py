"""``greenlight incident``: report on an incident, take an alert, list and show saved ones.

    greenlight incident report --at TIME [--trace FILE] [--window 6h] [--format md|json|html]
                               [--repo DIR] [--ledger URL] [--title T] [--service S] [--no-save]
    greenlight incident intake FILE [--content-type T]   # an Alertmanager/plain JSON body
    greenlight incident rollbacks                        # reports for the judge's rollbacks
    greenlight incident list
    greenlight incident show ID [--format md|json|html]
    greenlight incident why ID N ANSWER                  # save a 5 Whys answer (N = 1..5)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from greenlight.errors import UsageError


def _settings() -> dict[str, Any]:
    """The settings file's sections when the master package is installed; else nothing."""
    try:
        from greenlight.settings import load
    except ImportError:
        return {}
    settings = load()
    data = settings.as_dict()
    data["deploy"]["ledger_url"] = settings.expand(data["deploy"]["ledger_url"])
    return data


def _ledger_url(args: argparse.Namespace, settings: dict[str, Any]) -> str:
    if args.ledger:
        return args.ledger
    url = settings.get("deploy", {}).get("ledger_url")
    if url:
        return url
    from greenlight.deploy.ledger import DEFAULT_LEDGER_URL
    return DEFAULT_LEDGER_URL


def _incident_settings(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    conf = dict(settings.get("incidents", {}))
    if getattr(args, "window", None):
        conf["window"] = args.window
    if getattr(args, "link_preset", None):
        conf["link_preset"] = args.link_preset
    if getattr(args, "web_url", None):
        conf["web_url"] = args.web_url
    return conf


def _stores(args: argparse.Namespace):
    from greenlight.deploy.ledger import Ledger
    from greenlight.incidents.store import IncidentStore

    settings = _settings()
    ledger = Ledger(_ledger_url(args, settings))
    return settings, ledger, IncidentStore(engine=ledger.engine)


def _emit(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _report_and_print(incident, args, settings, ledger, store) -> int:
    from greenlight.incidents.build import build_report
    from greenlight.incidents.render import render

    report = build_report(incident, ledger, args.repo, _incident_settings(args, settings))
    if getattr(args, "save", True):
        store.save(incident, report.to_dict())
        report.incident.id = incident.id
    _emit(render(report, args.format), args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from greenlight.incidents.intake import parse_time
    from greenlight.incidents.model import Incident

    trace = None
    if args.trace:
        try:
            trace = sys.stdin.read() if args.trace == "-" else Path(args.trace).read_text(
                encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"--trace {args.trace}: cannot read: {exc.strerror}") from None
    incident = Incident(title=args.title or f"incident at {args.at}",
                        started_at=parse_time(args.at), source="cli", service=args.service,
                        trace=trace)
    settings, ledger, store = _stores(args)
    return _report_and_print(incident, args, settings, ledger, store)


def cmd_intake(args: argparse.Namespace) -> int:
    from greenlight.incidents.intake import parse_intake

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
    from greenlight.incidents.build import build_report
    from greenlight.incidents.intake import incident_from_request

    settings, ledger, store = _stores(args)
    conf = _incident_settings(args, settings)
    for request in ledger.incidents(status="open"):
        existing = store.by_request(request.id)
        incident = existing or incident_from_request(request, ledger)
        report = build_report(incident, ledger, args.repo, conf)
        store.save(incident, report.to_dict(), request_id=request.id)
        ledger.set_incident_status(request.id, "reported")
        top = report.suspects[0].commit.sha[:12] if report.suspects else "none"
        print(f"incident {incident.id}: {incident.title} (top suspect {top})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from greenlight.incidents.model import iso

    _, _, store = _stores(args)
    for incident in store.list(limit=args.limit):
        print(f"{incident.id}\t{iso(incident.started_at)}\t{incident.source}\t{incident.title}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from greenlight.incidents.build import build_report
    from greenlight.incidents.render import render

    settings, ledger, store = _stores(args)
    incident = store.get(args.id)
    report = build_report(incident, ledger, args.repo, _incident_settings(args, settings))
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
        p.add_argument("--ledger", help="SQLAlchemy URL of the deploy ledger (default: settings)")
        if report:
            p.add_argument("--repo", default=".", help="the deployed git repository (default .)")
            p.add_argument("--window", help="how far before the start to look (default 6h)")
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
    p.add_argument("--repo", default=".")
    p.add_argument("--window")
    p.add_argument("--ledger")
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
