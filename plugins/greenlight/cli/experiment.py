"""``greenlight experiment``: list, show, define, rollout, qa, close, results, buckets and reports.

Only parses arguments and calls :mod:`greenlight.experiments`; the database is ``--db URL``
(default $GREENLIGHT_EXPERIMENTS_DB, else the settings' ``[experiments] db_url``: the store the
master's Experiments page and the demo hosts use).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os

from greenlight.experiments import (
    Experiment,
    ExperimentStore,
    close,
    define,
    experiment_summary,
    explain,
    get_experiment,
    history,
    list_experiments,
    parse_branches,
    delete_bucket,
    list_buckets,
    parse_day,
    parse_since,
    render_list,
    render_report,
    report,
    save_bucket,
    render_results,
    results,
    set_qa,
    set_rollout,
)
from greenlight.experiments.definition import QA, ROLLOUT
from greenlight.experiments.buckets import Bucket, parse_did, parse_where
from greenlight.experiments.render import FORMATS
from greenlight.experiments.report_render import FORMATS as REPORT_FORMATS
from greenlight.settings import load
from greenlight.experiments.store import ENV_URL, default_url


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="experiments: ship dark, roll out by percentage, read results",
        description="Define experiments, change their rollout, read results per branch.")
    parser.add_argument("--db", default=None, metavar="URL",
                        help="experiments database (default $GREENLIGHT_EXPERIMENTS_DB, else "
                             "[experiments] db_url of $GREENLIGHT_SETTINGS or the defaults: "
                             "sqlite:///<state_dir>/experiments.sqlite)")
    verbs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = verbs.add_parser("list", help="every experiment and what users get now")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(func=_list)

    p = verbs.add_parser("show", help="one experiment, its state and its change history")
    p.add_argument("name")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_show)

    p = verbs.add_parser("define", help="create an experiment (state QA unless --rollout)")
    p.add_argument("name")
    p.add_argument("--branches", required=True, metavar="B=W[,B=W]",
                   help="branches besides control with weights, e.g. enhanced=0.5")
    p.add_argument("--rollout", type=float, default=None, metavar="PCT",
                   help="start rolled out to PCT%% instead of QA/admin only")
    p.add_argument("--qa-users", default=None, metavar="A,B")
    p.add_argument("--planned-users", type=int, default=None, metavar="N",
                   help="users per branch to wait for before trusting results")
    p.add_argument("--description", default="")
    p.add_argument("--attributes", default=None, metavar="A,B",
                   help="user attributes recorded with each exposure, e.g. gender,age_band")
    p.add_argument("--replace", action="store_true",
                   help="overwrite an existing definition (refused if it would move users)")
    _add_user(p)
    p.set_defaults(func=_define)

    p = verbs.add_parser("rollout", help="assign PCT%% of users to the branches")
    p.add_argument("name")
    p.add_argument("pct", type=float)
    _add_user(p)
    p.set_defaults(func=_rollout)

    p = verbs.add_parser("qa", help="back to QA and admins only; set who they are")
    p.add_argument("name")
    p.add_argument("--users", default=None, metavar="A,B", help="user ids (replaces the list)")
    p.add_argument("--groups", default=None, metavar="G,H",
                   help="groups whose members are assigned (default qa,admin)")
    _add_user(p)
    p.set_defaults(func=_qa)

    p = verbs.add_parser("close", help="launch BRANCH to everybody; nobody is assigned any more")
    p.add_argument("name")
    p.add_argument("--on", required=True, dest="branch", metavar="BRANCH")
    _add_user(p)
    p.set_defaults(func=_close)

    p = verbs.add_parser("results", help="metrics per branch against control, with significance")
    p.add_argument("name")
    p.add_argument("--metric", action="append", default=None, metavar="M",
                   help="only this metric (repeatable); default every metric recorded")
    p.add_argument("--since", default=None, metavar="T",
                   help="only exposures and events since T (ISO time, epoch, or 36h / 7d)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--format", choices=FORMATS, default="text")
    p.set_defaults(func=_results)

    p = verbs.add_parser("bucket", help="save a bucket (a named set of users) with an "
                                        "experiment, or list/delete them")
    p.add_argument("name")
    p.add_argument("bucket", nargs="?", help="bucket name (omit to list the saved ones)")
    p.add_argument("--where", action="append", default=[], metavar="ATTR=V[,V]",
                   help="users whose attribute ATTR is one of the values (repeatable)")
    p.add_argument("--did", action="append", default=[], metavar="EVENT[:K=V,...]",
                   help="users with an EVENT (with those properties) after exposure "
                        "(repeatable), e.g. login:platform=client")
    p.add_argument("--min-count", type=int, default=1, metavar="N",
                   help="--did needs at least N such events (default 1)")
    p.add_argument("--description", default="")
    p.add_argument("--delete", action="store_true", help="delete the bucket")
    _add_user(p)
    p.set_defaults(func=_bucket)

    p = verbs.add_parser("report", help="per bucket and branch: users, attributes with "
                                        "balance tests, metrics per user, over a date range")
    p.add_argument("name")
    p.add_argument("--from", dest="start", default=None, metavar="DATE",
                   help="users first exposed from DATE (2024-05-01 or an ISO time; default: "
                        "the first exposure)")
    p.add_argument("--to", dest="end", default=None, metavar="DATE",
                   help="through DATE (a bare date includes that day); events up to then")
    p.add_argument("--bucket", action="append", default=None, metavar="B",
                   help="only this saved bucket besides 'all' (repeatable; default every one)")
    p.add_argument("--metric", action="append", default=None, metavar="M")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--format", choices=REPORT_FORMATS, default="text")
    p.set_defaults(func=_report)


def _add_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=None,
                        help="who makes the change, for the audit trail (default $USER)")


def _who(args) -> str:
    if args.user:
        return args.user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "cli")


def db_url(db: str | None = None) -> str:
    """``--db``, else $GREENLIGHT_EXPERIMENTS_DB, else the settings' store (the one the page
    and the app hosts share), so a bare ``greenlight experiment list`` sees the demo's."""
    if db:
        return db
    if os.environ.get(ENV_URL):
        return default_url()
    settings = load()
    return settings.expand(settings["experiments"]["db_url"])


def _store(args) -> ExperimentStore:
    return ExperimentStore(db_url(args.db))


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def _list(args) -> int:
    print(render_list(list_experiments(store=_store(args)), args.format), end="")
    return 0


def _show(args) -> int:
    store = _store(args)
    experiment = get_experiment(args.name, store=store)
    changes = history(args.name, store=store)
    if args.format == "json":
        data = experiment_summary(experiment)
        data["history"] = [{"at": c.at, "by": c.by, "action": c.action, "detail": c.detail}
                           for c in changes]
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(f"{experiment.name}: {experiment.status_label()}")
    print(explain(experiment))
    print("branches: " + ", ".join(f"{b} {w * 100:g}%" for b, w in experiment.weights().items()))
    if experiment.qa_users:
        print("QA users: " + ", ".join(experiment.qa_users))
    if experiment.planned_users:
        print(f"planned users per branch: {experiment.planned_users:,}")
    print("history:")
    for c in changes:
        print(f"  {_fmt_time(c.at)}  {c.by}  {c.action}  {json.dumps(c.detail, sort_keys=True)}")
    return 0


def _define(args) -> int:
    experiment = Experiment(
        name=args.name, branches=parse_branches(args.branches),
        status=ROLLOUT if args.rollout is not None else QA,
        rollout_pct=args.rollout or 0.0, qa_users=tuple(_split(args.qa_users) or ()),
        planned_users=args.planned_users, description=args.description,
        attributes=tuple(_split(args.attributes) or ()))
    store = _store(args)
    existed = args.name in {e.name for e in list_experiments(store=store)}
    stored = define(experiment, _who(args), store=store, replace=args.replace)
    if existed and not args.replace:
        print(f"{stored.name} already exists and keeps its state (use --replace to redefine)")
    return _print_state(stored)


def _print_state(stored: Experiment) -> int:
    """What users of the experiment get now, after a change."""
    print(f"{stored.name}: {explain(stored)}")
    return 0


def _rollout(args) -> int:
    return _print_state(set_rollout(args.name, args.pct, _who(args), store=_store(args)))


def _qa(args) -> int:
    return _print_state(set_qa(args.name, _who(args), _split(args.users),
                               _split(args.groups), store=_store(args)))


def _close(args) -> int:
    return _print_state(close(args.name, args.branch, _who(args), store=_store(args)))


def _results(args) -> int:
    data = results(args.name, store=_store(args), metrics=args.metric,
                   since=parse_since(args.since), alpha=args.alpha)
    print(render_results(data, args.format), end="")
    return 0


def _bucket(args) -> int:
    store = _store(args)
    if args.bucket is None:
        buckets = list_buckets(args.name, store=store)
        for bucket in buckets:
            print(f"{bucket.name}: {bucket.describe()}")
        if not buckets:
            print(f"{args.name} has no saved buckets; every report has 'all'")
        return 0
    if args.delete:
        delete_bucket(args.name, args.bucket, _who(args), store=store)
        print(f"{args.name}: bucket {args.bucket} deleted")
        return 0
    bucket = Bucket(args.bucket, parse_where(args.where), parse_did(args.did, args.min_count),
                    args.description)
    save_bucket(args.name, bucket, _who(args), store=store)
    print(f"{args.name}: bucket {bucket.name} = {bucket.describe()}")
    return 0


def _report(args) -> int:
    data = report(args.name, parse_day(args.start) if args.start else None,
                  parse_day(args.end, end=True) if args.end else None, args.bucket,
                  store=_store(args), metrics=args.metric, alpha=args.alpha)
    print(render_report(data, args.format), end="")
    return 0


def _fmt_time(epoch: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
