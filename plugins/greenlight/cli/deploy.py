"""``greenlight deploy SHA``, ``rollback [--to SHA]``, ``releases``, ``deploys list|show|recover``.

Only parses arguments and renders; the work is in ``greenlight.deploy``.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading

from greenlight.cli import deploys_import
from greenlight.deploy import story
from greenlight.deploy.phases import DeployResult, PhaseReport, Progress

PHASE_PREFIX = "greenlight-phase: "
RESULT_PREFIX = "greenlight-result: "
# After each phase start and host move: where the deploy is, and ``if_interrupted``, the
# sentence to show if this is the last line the process prints (it was killed).
PROGRESS_PREFIX = "greenlight-progress: "
_OUT = threading.Lock()


# Buildbot cuts a log line longer than 4,096 characters where the worker's chunks fall
# (buildbot.util.lineboundaries), so a long JSON payload goes as pieces of at most this many
# characters: continuation lines ``<prefix>~ piece`` and then the prefixed last piece.
PIECE = 3000


def framed(prefix: str, payload: str) -> str:
    """``prefix + payload`` as lines Buildbot will not cut (see PIECE)."""
    pieces = [payload[i:i + PIECE] for i in range(0, len(payload), PIECE)] or [""]
    more = prefix.rstrip(": ") + "~ "
    return "".join(more + piece + "\n" for piece in pieces[:-1]) + prefix + pieces[-1] + "\n"


def _line(prefix: str, payload: str) -> None:
    """One payload's lines together: hosts move in parallel threads, and two prints
    interleaved on one line made the step's JSON unreadable (a good deploy read as
    interrupted)."""
    text = framed(prefix, payload)
    with _OUT:
        sys.stdout.write(text)
        sys.stdout.flush()


def add_parser(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--settings", help="settings file (default: $GREENLIGHT_SETTINGS, "
                        "else the embedded demo default)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = subparsers.add_parser("deploy", parents=[common], help="deploy a commit: canary, "
                              "judge, the rest; roll back on failure")
    p.add_argument("sha", help="commit to deploy (sha or ref in the watched repository)")
    p.add_argument("--trigger", default=None, help="who or what asked (default cli:<user>)")
    p.add_argument("--branch", default=None, help="branch the commit came from (ledger)")
    p.add_argument("--no-judge", action="store_true", help="skip the canary judge (health "
                   "checks only)")
    p.add_argument("--phase-lines", action="store_true", help="print one JSON line per phase "
                   f"as it ends, prefixed {PHASE_PREFIX!r}, and one per phase start and host "
                   f"move, prefixed {PROGRESS_PREFIX!r} (for the Buildbot step)")
    p.add_argument("--lock-wait", type=float, default=None, help="seconds to wait for a "
                   "running deploy (default: forever)")
    p.set_defaults(func=run_deploy)

    p = subparsers.add_parser("rollback", parents=[common], help="put every host back on an "
                              "earlier good release")
    p.add_argument("--to", default=None, help="release to go to (default: the previous good)")
    p.add_argument("--force", action="store_true", help="allow a release marked bad")
    p.add_argument("--trigger", default=None)
    p.add_argument("--phase-lines", action="store_true")
    p.add_argument("--lock-wait", type=float, default=None)
    p.set_defaults(func=run_rollback)

    p = subparsers.add_parser("releases", parents=[common], help="releases on each host")
    p.set_defaults(func=run_releases)

    p = subparsers.add_parser("deploys", help="the deploy ledger")
    sub = p.add_subparsers(dest="deploys_verb", metavar="ACTION")
    q = sub.add_parser("list", parents=[common], help="recent deploys, newest first")
    q.add_argument("--limit", type=int, default=20)
    q.set_defaults(func=run_deploys_list)
    q = sub.add_parser("show", parents=[common], help="one deploy with its events")
    q.add_argument("id", type=int)
    q.set_defaults(func=run_deploys_show)
    q = sub.add_parser("recover", parents=[common], help="finish an interrupted deploy: "
                       "every host back on one release")
    q.set_defaults(func=run_deploys_recover)
    deploys_import.add_to(sub)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _context(args, with_judge: bool = True):
    from greenlight.deploy.hosts import load_settings
    from greenlight.deploy.ledger import Ledger
    from greenlight.deploy.phases import Deployer

    settings = load_settings(args.settings)
    factory = None
    if with_judge and not getattr(args, "no_judge", False):
        from greenlight.deploy.canary_judge import judge_factory
        factory = judge_factory(settings)
    on_phase = _phase_printer(args)
    deployer = Deployer(settings, Ledger(settings.ledger_url), factory, on_phase,
                        on_progress=_progress_printer(args))
    deployer.lock_wait = getattr(args, "lock_wait", None)
    return settings, deployer


def _phase_printer(args):
    def show(report: PhaseReport) -> None:
        if getattr(args, "phase_lines", False):
            _line(PHASE_PREFIX, json.dumps(report.to_json()))
        elif not args.json:
            print(f"[{report.name}] {report.status}: {report.summary}", flush=True)
            if report.log and report.status != "ok":
                print(report.log, flush=True)
    return show


def _progress_printer(args):
    def show(progress: Progress) -> None:
        if getattr(args, "phase_lines", False):
            _line(PROGRESS_PREFIX, json.dumps(progress.to_json()))
    return show


def _trigger(args) -> str:
    if args.trigger:
        return args.trigger
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _finish(args, result: DeployResult) -> int:
    if getattr(args, "phase_lines", False):
        _line(RESULT_PREFIX, json.dumps(result.to_json(), default=str))
    elif args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(f"{result.outcome}: {result.message}")
        if result.failure and result.failure.get("log_tail"):
            print(f"start-up log of {result.failure['host']}:\n"
                  + result.failure["log_tail"].rstrip())
    return 0 if result.ok else 1


def run_deploy(args) -> int:
    _, deployer = _context(args)
    return _finish(args, deployer.deploy(args.sha, trigger=_trigger(args), branch=args.branch))


def run_rollback(args) -> int:
    _, deployer = _context(args, with_judge=False)
    return _finish(args, deployer.rollback(args.to, trigger=_trigger(args), force=args.force))


def run_releases(args) -> int:
    settings, deployer = _context(args, with_judge=False)
    states = deployer.host_states()
    bad = deployer.ledger.bad_releases()
    if args.json:
        print(json.dumps({"hosts": states, "bad": bad}, indent=2))
        return 0
    for name, st in states.items():
        if "error" in st:
            print(f"{name}: UNREACHABLE {st['error']}")
            continue
        print(f"{name}: current {_short(st['current'])} previous {_short(st['previous'])}")
        for rel in sorted(st["releases"], key=lambda r: r["mtime"], reverse=True):
            flags = [f for f, on in (("current", rel["sha"] == st["current"]),
                                     ("previous", rel["sha"] == st["previous"]),
                                     ("unfinished", not rel["finished"]),
                                     ("BAD", rel["sha"] in bad)) if on]
            print(f"    {rel['sha'][:12]} {' '.join(flags)}")
    return 0


def run_deploys_list(args) -> int:
    _, deployer = _context(args, with_judge=False)
    records = deployer.ledger.list_deploys(args.limit)
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    for r in records:
        ended = r.finished_at.strftime("%H:%M:%S") if r.finished_at else "-"
        shipped = f"{len(r.commits)} commit(s)" if story.shipped(r) else "nothing shipped"
        print(f"#{r.id:<4} {r.started_at:%Y-%m-%d %H:%M:%S} {ended:>8} {r.kind:8} "
              f"{r.outcome:12} {_short(r.previous_sha)} -> {_short(r.sha)} "
              f"({shipped}) {r.trigger or ''}")
    return 0


def run_deploys_show(args) -> int:
    _, deployer = _context(args, with_judge=False)
    record = deployer.ledger.deploy(args.id)
    if args.json:
        print(json.dumps({**record.to_json(), "story": story.summary(record)}, indent=2))
        return 0
    print(f"deploy #{record.id} {record.kind} {record.outcome}: {_short(record.previous_sha)} "
          f"-> {_short(record.sha)} by {record.trigger}")
    print(story.verdict_sentence(record))
    for e in record.events:
        summary = e.data.get("summary") or e.data.get("outcome") or ""
        print(f"  {e.at:%H:%M:%S.%f} {e.phase:14} {e.host or '':10} {_short(e.release)} "
              f"{summary}")
    return 0


def run_deploys_recover(args) -> int:
    _, deployer = _context(args, with_judge=False)
    results = deployer.recover()
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, default=str))
    elif not results:
        print("nothing to recover: no interrupted deploy in the ledger")
    for r in results:
        if not args.json:
            print(r.message)
    return 0


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-" * 12
