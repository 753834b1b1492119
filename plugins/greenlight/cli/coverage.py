"""``greenlight coverage``: the gate on coverage of the lines base..head added or changed."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greenlight.coverage.gate import diff_coverage
from greenlight.coverage.render import RENDERERS
from greenlight.errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "coverage", help="fail when the lines a push adds or changes are not run by the tests",
        description="Coverage of new code: lines added or changed in base..head that the tests "
                    "did not run. Exit 0 at or over --fail-under, 1 under it, 2 on bad input.")
    p.add_argument("--base", default=None,
                   help="previous sha of the branch; omitted or all zeros = first push")
    p.add_argument("--head", required=True, help="the pushed sha")
    p.add_argument("--data", type=Path, default=None,
                   help="coverage data file (default: the config's data_file, .coverage, "
                        "in --repo)")
    p.add_argument("--repo", type=Path, default=Path("."),
                   help="checkout of head that was measured (default .)")
    p.add_argument("--config", type=Path, default=None,
                   help="coverage config file (default: the one coverage finds in --repo)")
    p.add_argument("--fail-under", type=float, default=100.0, metavar="PCT",
                   help="minimum percentage of new code covered (default 100)")
    p.add_argument("--format", choices=sorted(RENDERERS), default="text")
    p.add_argument("--output", type=Path, default=None, help="write the report here")
    p.add_argument("--also-markdown", type=Path, default=None, metavar="FILE",
                   help="also write the Markdown report to FILE")
    p.add_argument("--also-html", type=Path, default=None, metavar="FILE",
                   help="also write the HTML report to FILE")
    p.add_argument("--combine", action="store_true",
                   help="first combine parallel data files (<data>.*) into the data file")
    p.add_argument("--ext", action="append", default=None, metavar=".EXT",
                   help="file endings to check (repeatable; default .py)")
    p.set_defaults(func=run)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    extensions = tuple(args.ext) if args.ext else (".py",)
    report = diff_coverage(args.repo, args.base, args.head, data_file=args.data,
                           config_file=args.config, fail_under=args.fail_under,
                           extensions=extensions, combine=args.combine)
    text = RENDERERS[args.format](report)
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    if args.also_markdown:
        _write(args.also_markdown, RENDERERS["markdown"](report))
    if args.also_html:
        _write(args.also_html, RENDERERS["html"](report))
    if args.output or args.format != "text":
        print(report.summary(), file=sys.stderr)
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m greenlight.cli.coverage ...``: the verb alone, without importing the other
    verbs' engines (quicker start on a worker or in a hook)."""
    from greenlight.errors import GreenlightError

    parser = argparse.ArgumentParser(prog="greenlight")
    add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["coverage", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except GreenlightError as exc:
        print(f"greenlight coverage: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
