"""Entry point of the ``greenlight`` console script.

Only parses the verb and dispatches: each verb lives in ``greenlight/cli/<verb>.py`` and exposes
``add_parser(subparsers)`` which registers its sub-parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code).
Exit codes: 0 ok, 1 the check found a problem, 2 bad input or usage.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from greenlight.errors import GreenlightError

# Verb -> module under greenlight.cli. Every module listed must import: a broken one is an
# error with its traceback, never a verb quietly missing from the help.
VERBS = {
    "up": "up",
    "down": "up",
    "flush": "flush",
    "settings": "settings_check",
    "coverage": "coverage",
    "schema": "schema",
    "shards": "shards",
    "flaky": "shards",
    "deploy": "deploy",
    "rollback": "deploy",
    "releases": "deploy",
    "deploys": "deploy",
    "incident": "incident",
    "experiment": "experiment",
    "worker": "worker",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exits 2 as well; keep the usage
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``verb`` only that verb's module is imported (fast start:
    the coverage gate should not pay for scipy or the SQL parsers)."""
    parser = _Parser(prog="greenlight", description="Continuous deployment on Buildbot.")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    modules = [VERBS[verb]] if verb in VERBS else list(dict.fromkeys(VERBS.values()))
    for module_name in modules:
        importlib.import_module(f"greenlight.cli.{module_name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    exit_at_once = argv is None   # the console script: this process is ours to end
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    args.exit_at_once = exit_at_once
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except GreenlightError as exc:
        print(f"greenlight {args.verb}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
