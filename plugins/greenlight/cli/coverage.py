"""``greenlight coverage``: the gate on coverage of the lines base..head added or changed.

``greenlight coverage prepare`` does the half that needs no test data (changed lines, coverage's
static analysis, blame) and can run the tests meanwhile (``--run ARGV...``); the gate then takes
``--prepared FILE``. ``greenlight coverage ... --run ARGV...`` does both in one process: it runs
the tests, prepares meanwhile, and gates the data they wrote as soon as they end (nothing to
start or re-read after the tests). Engine modules are imported only when a run needs them.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from greenlight.errors import GreenlightError, UsageError

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
    p.add_argument("--tests-status", action="store_true",
                   help="with --run: exit with the tests' status only (the report files carry "
                        "the gate's verdict); default: the tests' status if they failed, else "
                        "the gate's")
    p.add_argument("--run", nargs=argparse.REMAINDER, default=None, metavar="ARGV",
                   help="last option: start this command (e.g. the tests) first and prepare "
                        "meanwhile at low priority; prepare: exit with the command's status; "
                        "gate: then gate the data it wrote, in the same process")
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
        return run_tests_then_gate(args, extensions)
    if args.tests_status:
        raise UsageError("--tests-status goes with --run")
    return gate(args, extensions, args.prepared)


def gate(args: argparse.Namespace, extensions: tuple[str, ...], prepared) -> int:
    """Run the gate, write the report(s); 0 at or over the threshold, 1 under it."""
    from greenlight.coverage.gate import diff_coverage
    from greenlight.coverage.render import RENDERERS

    html = args.format == "html" or args.also_html is not None
    report = diff_coverage(args.repo, args.base, args.head, data_file=args.data,
                           config_file=args.config, fail_under=args.fail_under,
                           extensions=extensions, combine=args.combine,
                           prepared=prepared, with_source=html)
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
    if args.tests_status:
        raise UsageError("--tests-status goes with the gate's --run, not with prepare")
    output = args.output or Path(PREPARED_FILE)
    child = None
    if args.run is not None:
        child = _start(args.run)
        os.nice(10)   # the tests come first; the analysis uses what CPU they leave
    from greenlight.coverage.gate import prepare, save_prepared

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
    return _exit_status(status)


def _exit_status(returncode: int) -> int:
    """A child's return code as a shell would report it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def _report_bug(what: str) -> None:
    print(f"greenlight coverage: {what}:\n{traceback.format_exc()}", file=sys.stderr)


def _start(argv: list[str]):
    import subprocess

    if not argv:
        raise UsageError("--run needs a command (an argument list)")
    try:
        return subprocess.Popen(argv)
    except OSError as exc:
        raise UsageError(f"cannot start {argv[0]!r}: {exc}") from exc


def _lower_this_thread() -> None:
    """Give the calling thread the lowest share of CPU the tests could want (Linux: niceness is
    per thread), so the preparation uses only what the tests leave, while the gate, on the main
    thread, runs at full priority the moment they end. Elsewhere: no change."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def run_tests_then_gate(args: argparse.Namespace, extensions: tuple[str, ...]) -> int:
    """``--run`` on the gate: start the tests, prepare while they run, gate their data the
    moment they end. Report files of an earlier run are removed first, so a report on disk is
    always this run's. A failed prepare only costs time (the gate recomputes); a gate that
    cannot run (no data, bad input) says why on stderr and exits 2 unless ``--tests-status``."""
    if args.prepared is not None:
        raise UsageError("--prepared and --run exclude each other: with --run the analysis is "
                         "prepared while the tests run and kept in memory")
    reports = [p for p in (args.output, args.also_markdown, args.also_html) if p is not None]
    for path in reports:
        Path(path).unlink(missing_ok=True)
    outcome: dict = {}

    def prepare_meanwhile() -> None:
        _lower_this_thread()
        try:
            from greenlight.coverage.gate import prepare_in_memory
            outcome["prepared"] = prepare_in_memory(args.repo, args.base, args.head,
                                                    config_file=args.config,
                                                    extensions=extensions)
        except GreenlightError as exc:
            print(f"greenlight coverage: prepare failed: {exc} (the gate will recompute)",
                  file=sys.stderr)
        except Exception:   # a bug here must not cost the tests' verdict: recompute
            _report_bug("prepare failed (the gate will recompute)")
        except BaseException as exc:   # re-raised by the main thread
            outcome["error"] = exc

    child = _start(args.run)
    try:
        worker = threading.Thread(target=prepare_meanwhile, name="prepare", daemon=True)
        worker.start()
        status = child.wait()
        ended, cpu = time.perf_counter(), time.thread_time()
        worker.join()
    except BaseException:
        if child.poll() is None:
            child.terminate()
            child.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    prepared = outcome.get("prepared")
    status = _exit_status(status)
    for path in reports:   # whatever the tests left under these names is not our report
        Path(path).unlink(missing_ok=True)
    try:
        verdict = gate(args, extensions, prepared)
    except GreenlightError as exc:
        print(f"greenlight coverage: {exc}", file=sys.stderr)
        verdict = 2
    except Exception:   # with --tests-status the tests' status must still come out
        _report_bug("the gate failed")
        verdict = 2
    print(f"greenlight coverage: gated {time.perf_counter() - ended:.3f}s "
          f"({time.thread_time() - cpu:.3f}s CPU) after the tests ended (tests exit {status})",
          file=sys.stderr)
    code = status if args.tests_status or status else verdict
    if getattr(args, "exit_at_once", False) and not os.environ.get("COVERAGE_PROCESS_START"):
        # From the command line, the report is written and nothing else is pending: skip the
        # interpreter's tear-down of the analysis (~20 ms on a 600-file push), which would
        # otherwise sit between the tests' end and the build's next step. (Not when coverage
        # measures this process: its data is saved at exit.)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    """``python -m greenlight.cli.coverage ...``: the verb alone, without importing the other
    verbs' engines (quicker start on a worker or in a hook)."""
    parser = argparse.ArgumentParser(prog="greenlight")
    add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["coverage", *(sys.argv[1:] if argv is None else argv)])
    args.exit_at_once = argv is None   # a process of its own (see run_tests_then_gate)
    try:
        return args.func(args)
    except GreenlightError as exc:
        print(f"greenlight coverage: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
