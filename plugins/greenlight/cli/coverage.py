"""``greenlight coverage``: the gate on coverage of the lines base..head added or changed.

``greenlight coverage prepare`` does the half that needs no test data (changed lines, coverage's
static analysis, blame) and can run the tests meanwhile (``--run ARGV...``); the gate then takes
``--prepared FILE``. Engine modules are imported only when a run needs them (quick start).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from greenlight.errors import UsageError

FORMATS = ("html", "json", "markdown", "text")
PREPARED_FILE = ".greenlight-coverage-prepared.json"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "coverage", help="fail when the lines a push adds or changes are not run by the tests",
        description="Coverage of new code: lines added or changed in base..head that the tests "
                    "did not run. Exit 0 at or over --fail-under, 1 under it, 2 on bad input. "
                    "`greenlight coverage prepare ...` does the part that needs no test data "
                    "(write it with -o FILE, give it to the gate with --prepared FILE).")
    p.add_argument("action", nargs="?", choices=["prepare"], default=None,
                   help="prepare: analyse the changed code only (no coverage data needed)")
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
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", "-o", type=Path, default=None,
                   help="write the report here (prepare: the prepared file, default "
                        f"{PREPARED_FILE})")
    p.add_argument("--prepared", type=Path, default=None, metavar="FILE",
                   help="use the analysis `greenlight coverage prepare` wrote (recomputed, "
                        "with a message, when it does not match this run)")
    p.add_argument("--run", nargs=argparse.REMAINDER, default=None, metavar="ARGV",
                   help="prepare only, last option: start this command (e.g. the tests) first, "
                        "prepare meanwhile at low priority, exit with the command's status")
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
    if args.action == "prepare":
        return run_prepare(args, extensions)
    if args.run is not None:
        raise UsageError("--run goes with `greenlight coverage prepare`")
    from greenlight.coverage.gate import diff_coverage
    from greenlight.coverage.render import RENDERERS

    html = args.format == "html" or args.also_html is not None
    report = diff_coverage(args.repo, args.base, args.head, data_file=args.data,
                           config_file=args.config, fail_under=args.fail_under,
                           extensions=extensions, combine=args.combine,
                           prepared=args.prepared, with_source=html)
    if report.prepared_note:
        print(f"greenlight coverage: {report.prepared_note}", file=sys.stderr)
    if args.format == "json" and not args.output and sys.stdout.isatty():
        text = RENDERERS["json"](report, indent=2)   # for a person; compact for programs
    else:
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


def run_prepare(args: argparse.Namespace, extensions: tuple[str, ...]) -> int:
    """Write the prepared file; with ``--run``, start that command first and return its exit
    status (a failed prepare only warns: the gate then recomputes and says so)."""
    import os
    import subprocess

    output = args.output or Path(PREPARED_FILE)
    child = None
    if args.run is not None:
        if not args.run:
            raise UsageError("--run needs a command (an argument list)")
        try:
            child = subprocess.Popen(args.run)
        except OSError as exc:
            raise UsageError(f"cannot start {args.run[0]!r}: {exc}") from exc
        os.nice(10)   # the tests come first; the analysis uses what CPU they leave
    from greenlight.coverage.gate import prepare, save_prepared
    from greenlight.errors import GreenlightError

    start = time.perf_counter()
    try:
        try:
            prepared = prepare(args.repo, args.base, args.head, config_file=args.config,
                               extensions=extensions, parallel=child is None)
            save_prepared(prepared, output)
            analysed = sum("static" in f for f in prepared["files"])
            print(f"greenlight coverage prepare: {analysed} of {prepared['changed_files']} "
                  f"changed file(s) analysed in {time.perf_counter() - start:.2f}s -> {output}",
                  file=sys.stderr)
        except GreenlightError as exc:
            if child is None:
                raise
            print(f"greenlight coverage prepare: {exc} (the gate will recompute)",
                  file=sys.stderr)
        if child is None:
            return 0
        status = child.wait()
    except BaseException:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()
        raise
    return 128 - status if status < 0 else status


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
