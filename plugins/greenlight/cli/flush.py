"""``greenlight flush REPO``: deliver changes a server hook spooled while the master was down."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("flush", help="deliver spooled changes of a bare repository")
    parser.add_argument("repo", nargs="?", type=Path,
                        help="bare repository (default: the demo repository)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import git

    from greenlight.errors import UsageError
    from greenlight.push.post_receive import flush_spool

    path = args.repo
    if path is None:
        from greenlight import settings

        path = settings.load().demo_repo_path
    try:
        repo = git.Repo(path)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
        raise UsageError(f"{path}: not a git repository") from None
    delivered, left = flush_spool(repo, wait=True)
    print(f"{delivered} change(s) delivered, {left} still pending")
    return 0 if left == 0 else 1
