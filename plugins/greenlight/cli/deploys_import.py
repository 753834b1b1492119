"""``greenlight deploys import``: load a team's past deploys into the ledger.

    greenlight deploys import FILE                    # JSON lines or CSV
    greenlight deploys import --from-git --branch main [--since 2025-01-01]
    greenlight deploys import --from-git --tags 'v*'

Columns: sha, deployed_at (ISO 8601 or epoch seconds), optional previous_sha, environment,
hosts, outcome. Only parses arguments and prints; the work is in
``greenlight.incidents.deploy_import``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from greenlight.errors import UsageError


def add_to(sub) -> None:
    """Register ``import`` under the ``deploys`` verb's sub-parsers."""
    q = sub.add_parser("import", help="import past deploys (JSON lines, CSV, or from git)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("file", nargs="?", help="JSON lines or CSV file of deploys ('-' = stdin)")
    q.add_argument("--from-git", action="store_true",
                   help="take the deploys from git: --branch or --tags")
    q.add_argument("--branch", help="first-parent commits of this branch, at commit time")
    q.add_argument("--tags", help="tags matching this glob (e.g. 'v*'), at tag time")
    q.add_argument("--since", help="only from this time on (ISO 8601, epoch, -90d)")
    q.add_argument("--environment", default="production")
    q.add_argument("--repo", help="the repository (default: [repository] url of the settings)")
    q.add_argument("--ledger", help="SQLAlchemy URL of the ledger (default: the settings')")
    q.add_argument("--settings", help="settings file (default: $GREENLIGHT_SETTINGS)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    import sys

    from greenlight.deploy.ledger import Ledger
    from greenlight.git.history import GitHistory
    from greenlight.incidents.change_index import index_deploys
    from greenlight.incidents.deploy_import import (
        history_from_git,
        import_deploys,
        parse_history,
        read_history,
    )
    from greenlight.incidents.intake import parse_time
    from greenlight.settings import load

    settings = load(args.settings)
    began = time.perf_counter()
    if args.from_git:
        if args.file:
            raise UsageError("give a FILE or --from-git, not both")
        with GitHistory(args.repo or settings.repo_url) as history:
            since = parse_time(args.since) if args.since else None
            rows = history_from_git(history, branch=args.branch, tags=args.tags, since=since,
                                    environment=args.environment)
        source = f"import:git:{args.branch or args.tags}"
    elif args.file:
        if args.branch or args.tags or args.since:
            raise UsageError("--branch, --tags and --since go with --from-git")
        rows = (parse_history(sys.stdin.read(), "<stdin>") if args.file == "-"
                else read_history(args.file))
        source = f"import:{Path(args.file).name}"
    else:
        raise UsageError("give a FILE of deploys (JSON lines or CSV) or --from-git")
    url = args.ledger or settings.expand(settings["deploy"]["ledger_url"])
    ledger = Ledger(url)
    try:
        result = import_deploys(ledger, rows, source=source[:255])
        # Incident reports read files' histories from an index of changes (best effort).
        repo = args.repo or settings.repo_url
        index_note = index_deploys(ledger.engine, repo, [
            r.sha for r in sorted(rows, key=lambda r: r.deployed_at)]) if repo else None
    finally:
        ledger.close()
    took = time.perf_counter() - began
    if args.json:
        print(json.dumps({**result.to_dict(), "seconds": round(took, 3), "ledger": url}))
        return 0
    print(f"imported {result.inserted} deploy(s) into {url} in {took:.2f} s"
          + (f"; {result.skipped} already in the ledger, skipped" if result.skipped else ""))
    if result.first:
        print(f"from {result.first.isoformat()} to {result.last.isoformat()}; "
              f"{result.host_rows} host release row(s)")
    if index_note:
        print(index_note)
    if result.hosts_with_history:
        print(f"hosts with their own release history, left as they were: "
              f"{', '.join(result.hosts_with_history)}")
    return 0
