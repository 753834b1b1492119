"""CLI verbs ``greenlight shards ...`` (plan, durations, rerun-failures, check) and
``greenlight flaky list``: argument parsing and rendering only; the work is in greenlight.shards.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from greenlight.errors import UsageError
from greenlight.shards.collect import FAILURE, judge_shards, load_reports
from greenlight.shards.durations import (
    ENV_URL,
    DurationStore,
    read_durations_file,
    write_durations_file,
)
from greenlight.shards.junit import parse_junit_file
from greenlight.shards.planner import parse_test_ids, plan_shards
from greenlight.shards.render import render_plan_text

DB_HELP = (f"SQLAlchemy URL of the durations/flaky database (default ${ENV_URL}, else the "
           "settings' [shards] durations_url)")


def add_parser(subparsers) -> None:
    shards = subparsers.add_parser(
        "shards", help="duration-balanced test shards, durations, flaky reruns",
        description="Plan duration-balanced shards, keep recorded test durations, rerun failed "
                    "tests alone (flaky or real), and judge all shards' results as one.")
    sub = shards.add_subparsers(dest="shards_command", metavar="COMMAND")
    shards.set_defaults(func=lambda args: _usage(shards))

    plan = sub.add_parser("plan", help="split tests into N shards of nearly equal duration")
    plan.add_argument("--shards", type=int, required=True, metavar="N")
    plan.add_argument("--durations", metavar="FILE",
                      help="pytest-split .test_durations JSON (default: the durations store)")
    plan.add_argument("--db", help=DB_HELP + "; used when --durations is not given")
    plan.add_argument("--tests", metavar="FILE|-",
                      help="test ids, one per line (`pytest --collect-only -q` output works); "
                           "default: every id in the durations")
    plan.add_argument("--group-by-module", action="store_true",
                      help="keep the tests of one module in one shard")
    plan.add_argument("--format", choices=("json", "text"), default="text")
    plan.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    plan.set_defaults(func=cmd_plan)

    dur = sub.add_parser("durations", help="import/export/ingest recorded test durations")
    action = dur.add_mutually_exclusive_group(required=True)
    action.add_argument("--export", metavar="FILE", help="write pytest-split .test_durations")
    action.add_argument("--import", dest="import_file", metavar="FILE",
                        help="read pytest-split .test_durations (overwrites those ids)")
    action.add_argument("--ingest", metavar="JUNIT_XML", nargs="+",
                        help="fold durations of JUnit XML reports into the store (smoothed)")
    dur.add_argument("--db", help=DB_HELP)
    dur.add_argument("--build", help="build id recorded with ingested durations")
    dur.add_argument("--rootdir", help="folder pytest ran in (resolves JUnit class names)")
    dur.set_defaults(func=cmd_durations)

    rerun = sub.add_parser("rerun-failures", help="rerun each failed test alone; flaky or real")
    rerun.add_argument("junit", nargs="+", metavar="JUNIT_XML")
    rerun.add_argument("--cwd", default=".", help="folder to run pytest in (default: .)")
    rerun.add_argument("--python", help="python to run pytest with (default: this one)")
    rerun.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                       help="extra pytest argument for the reruns (repeatable)")
    rerun.add_argument("--timeout", type=float, default=600.0, help="seconds per rerun")
    rerun.add_argument("--record", action="store_true",
                       help="record flaky tests in the flaky ledger (--db)")
    rerun.add_argument("--db", help=DB_HELP)
    rerun.add_argument("--build", help="build id for the flaky ledger")
    rerun.add_argument("--commit", help="commit sha for the flaky ledger")
    rerun.add_argument("--output", "-o", metavar="FILE", help="also write the JSON here")
    rerun.set_defaults(func=cmd_rerun_failures)

    check = sub.add_parser("check", help="one verdict from all shards: union check (every "
                           "collected test ran exactly once), failures, flaky tests")
    check.add_argument("reports", nargs="+", metavar="JSON",
                       help="files written by pytest --shard-report, and the outputs of "
                            "`shards rerun-failures` (a later report of a shard replaces it)")
    check.add_argument("--plan", metavar="FILE", help="the plan, to notice a shard that left "
                       "no report at all")
    check.add_argument("--fail-on-flaky", action="store_true",
                       help="fail the verdict for flaky tests too (default: warnings)")
    check.add_argument("--format", choices=("json", "text"), default="json")
    check.set_defaults(func=cmd_check)

    flaky = subparsers.add_parser("flaky", help="the flaky-test ledger")
    fsub = flaky.add_subparsers(dest="flaky_command", metavar="COMMAND")
    flaky.set_defaults(func=lambda args: _usage(flaky))
    flist = fsub.add_parser("list", help="flakiest tests first")
    flist.add_argument("--db", help=DB_HELP)
    flist.add_argument("--limit", type=int, default=50)
    flist.add_argument("--format", choices=("json", "text"), default="text")
    flist.set_defaults(func=cmd_flaky_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _emit(text: str, output: str | None = None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def read_test_ids(source: str) -> list[str]:
    """Test ids, one per line, from a file or ``-`` (stdin); pytest's ``--collect-only -q``
    summary lines and blank lines are skipped."""
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--tests {source}: cannot read ({exc.strerror})") from exc
    return parse_test_ids(text)


def cmd_plan(args: argparse.Namespace) -> int:
    if args.durations:
        durations = read_durations_file(args.durations)
    else:
        durations = DurationStore(_db(args)).durations()
    test_ids = read_test_ids(args.tests) if args.tests else list(durations)
    if not test_ids:
        raise UsageError("no tests to plan: pass --tests FILE|- or durations that name tests")
    plan = plan_shards(test_ids, durations, args.shards, group_by_module=args.group_by_module)
    if args.format == "json":
        _emit(json.dumps(plan.to_json(), indent=1) + "\n", args.output)
    else:
        _emit(render_plan_text(plan), args.output)
    return 0


def cmd_durations(args: argparse.Namespace) -> int:
    store = DurationStore(_db(args))
    if args.export:
        durations = store.durations()
        write_durations_file(args.export, durations)
        print(f"exported {len(durations)} durations to {args.export}")
    elif args.import_file:
        n = store.replace(read_durations_file(args.import_file))
        print(f"imported {n} durations from {args.import_file}")
    else:
        total = 0
        for path in args.ingest:
            total += store.record_results(parse_junit_file(path, rootdir=args.rootdir),
                                          build=args.build)
        print(f"recorded {total} durations from {len(args.ingest)} JUnit report(s)")
    return 0


def cmd_rerun_failures(args: argparse.Namespace) -> int:
    from greenlight.shards.flaky import FLAKY, FlakyLedger
    from greenlight.shards.rerun import rerun_failures

    results = []
    for path in args.junit:
        results.extend(parse_junit_file(path, rootdir=args.cwd))
    reruns = rerun_failures(results, cwd=args.cwd, python=args.python,
                            extra_args=args.pytest_arg, timeout=args.timeout)
    flaky = [r for r in reruns if r.verdict == FLAKY]
    failed = [r for r in reruns if r.verdict != FLAKY]
    if args.record and flaky:
        FlakyLedger(_db(args)).record([r.test_id for r in flaky], build=args.build,
                                    commit=args.commit,
                                    messages={r.test_id: r.message for r in flaky})
    out = {"flaky": [r.test_id for r in flaky], "failed": [r.test_id for r in failed],
           "reruns": [r.to_json() for r in reruns], "ok": not failed}
    text = json.dumps(out, indent=1) + "\n"
    sys.stdout.write(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    reports, reruns = load_reports(args.reports)
    plan = None
    if args.plan:
        try:
            plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--plan {args.plan}: cannot read the plan ({exc})") from exc
    verdict = judge_shards(reports, reruns, plan, fail_on_flaky=args.fail_on_flaky)
    if args.format == "json":
        print(json.dumps(verdict.to_json(), indent=1))
    else:
        sys.stdout.write(verdict.render_text())
    print(verdict.summary(), file=sys.stderr)
    return 1 if verdict.result == FAILURE else 0


def cmd_flaky_list(args: argparse.Namespace) -> int:
    from greenlight.shards.flaky import FlakyLedger

    entries = FlakyLedger(_db(args)).flakiest(limit=args.limit)
    if args.format == "json":
        print(json.dumps({"flaky": [e.to_json() for e in entries]}, indent=1))
        return 0
    if not entries:
        print("no flaky tests recorded")
    for e in entries:
        d = e.to_json()
        print(f"{e.count:4d}  {e.test_id}  (first {d['first_seen']}, last {d['last_seen']}, "
              f"build {e.last_build or '-'}, commit {(e.last_commit or '-')[:10]})")
    return 0


def _db(args) -> str | None:
    """``--db``, else $GREENLIGHT_DURATIONS_DB, else the settings' ``[shards] durations_url``
    (the database the master writes), so a bare ``greenlight flaky list`` sees the master's."""
    if args.db or os.environ.get(ENV_URL):
        return args.db
    from greenlight import settings as settings_mod

    loaded = settings_mod.load()
    return loaded.expand(loaded["shards"]["durations_url"])
