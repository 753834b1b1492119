"""Benchmark: schema review on a real-world migration corpus, beside squawk, in one run.

The corpus is others' files, built outside the repository by ``bench/schema_corpus.py`` (its
MANIFEST.json names each repository and commit).  Per dialect and repository, the CLI
``greenlight schema check DIR --format json`` runs as a process (the whole repository's
migrations are one change history, so tables created earlier are new); for PostgreSQL, squawk
(PyPI ``squawk-cli``) lints the same files in its own process.  Both processes' CPU comes from
``getrusage(RUSAGE_CHILDREN)``, start-up included on both sides.  Printed: files, statements,
flagged statements, crashes (exit codes other than 0/1), agreement with squawk per statement
(squawk's style-only rules left out), and the CPU ratio; then a synthetic 100,000-statement
file (the splitter's linear time).

    .venv/bin/python bench/schema_corpus.py /work/corpus
    .venv/bin/python bench/schema_review.py /work/corpus
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from schema_review.review import ReviewSettings, review_texts  # noqa: E402
from schema_review.split import split_statements  # noqa: E402

# squawk rules about style or hygiene, not about what the server does to a running release.
SQUAWK_STYLE = {"prefer-robust-stmts", "prefer-bigint-over-int", "prefer-bigint-over-smallint",
                "prefer-big-int", "prefer-identity", "prefer-text-field", "prefer-timestamptz",
                "ban-char-field", "require-timeout-settings", "ban-uncommitted-transaction",
                "transaction-nesting", "require-table-schema", "require-lock-timeout",
                "require-statement-timeout", "prefer-timestamp-tz"}
BIN = Path(sys.executable).parent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# As installed: Python modules run from their compiled bytecode (this environment sets
# PYTHONDONTWRITEBYTECODE, which would make every run recompile Greenlight's sources).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_cpu(argv: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, CPU seconds of the child, wall seconds)."""
    before, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=CHILD_ENV)
    return result, _children_cpu() - before, time.perf_counter() - start


def statement_starts(path: Path, dialect: str) -> list[int]:
    text = path.read_bytes().decode("utf-8", "replace")
    return [s.line for s in split_statements(text, dialect, (15,) if dialect == "postgres"
                                             else (8, 0, 35))]


def owning_statement(starts: list[int], line: int) -> int | None:
    """The start line of the statement that contains ``line`` (1-based)."""
    owner = None
    for start in starts:
        if start > line:
            break
        owner = start
    return owner


def greenlight(directory: Path, dialect: str) -> tuple[dict | None, float, float, int, str]:
    argv = [str(BIN / "greenlight"), "schema", "check", str(directory), "--dialect", dialect,
            "--format", "json"]
    result, cpu, wall = run_cpu(argv)
    report = json.loads(result.stdout) if result.returncode in (0, 1) else None
    return report, cpu, wall, result.returncode, result.stderr.strip()[-300:]


def squawk(files: list[Path]) -> tuple[list[dict] | None, float, float]:
    exe = shutil.which("squawk") or str(BIN / "squawk")
    if not Path(exe).exists():
        return None, 0.0, 0.0
    result, cpu, wall = run_cpu([exe, "--reporter", "json", *map(str, files)])
    try:
        return json.loads(result.stdout or "[]"), cpu, wall
    except ValueError:
        return [], cpu, wall


def measure_repo(repo_dir: Path, dialect: str, totals: dict, disagreements: list) -> None:
    files = sorted(repo_dir.glob("*.sql"))
    report, cpu, wall, code, err = greenlight(repo_dir, dialect)
    totals["files"] += len(files)
    totals["gl_cpu"] += cpu
    totals["gl_wall"] += wall
    if report is None:
        totals["crashes"] += 1
        print(f"  CRASH exit {code}: {err}")
        return
    totals["statements"] += report["summary"]["statements"]
    flagged = {(Path(f["file"]).name, f["line"]) for f in report["findings"]
               if f["verdict"] == "review"}
    totals["flagged"] += len(flagged)
    totals["unparsed"] += sum(1 for f in report["findings"] if f["danger"] == "unparsed")
    for f in report["findings"]:
        if f["verdict"] == "review":
            totals["gl_rules"][f["rule"]] += 1
    if dialect != "postgres":
        return
    results, sq_cpu, sq_wall = squawk(files)
    if results is None:
        totals["squawk_missing"] = True
        return
    totals["sq_cpu"] += sq_cpu
    totals["sq_wall"] += sq_wall
    starts = {p.name: statement_starts(p, dialect) for p in files}
    squawked: dict[tuple[str, int], set[str]] = collections.defaultdict(set)
    for item in results:
        rule = item.get("rule_name", "")
        if rule in SQUAWK_STYLE:
            continue
        name = Path(item["file"]).name
        start = owning_statement(starts.get(name, []), int(item.get("line", 0)) + 1)
        if start is not None:
            squawked[(name, start)].add(rule)
            totals["sq_rules"][rule] += 1
    both = flagged & set(squawked)
    totals["both"] += len(both)
    totals["only_greenlight"] += len(flagged - set(squawked))
    totals["only_squawk"] += len(set(squawked) - flagged)
    new_table = {(Path(f["file"]).name, f["line"]) for f in report["findings"]
                 if (f["table_size"] or {}).get("source") == "new"}
    totals["only_squawk_new_table"] += len((set(squawked) - flagged) & new_table)
    for key in sorted(flagged ^ set(squawked))[:3]:
        rules = sorted(squawked.get(key, ())) or ["-"]
        mine = sorted({f["rule"] for f in report["findings"] if (Path(f["file"]).name,
                       f["line"]) == key and f["verdict"] == "review"}) or ["-"]
        disagreements.append(f"{repo_dir.name}/{key[0]}:{key[1]} greenlight {mine} squawk "
                             f"{rules}")


def cpu_ratio(dialect_dir: Path, repeat: int) -> None:
    """Both tools once over every file of the dialect, in one process each (start-up
    included on both sides); the lowest of ``repeat`` runs, as the machine is shared."""
    files = sorted(dialect_dir.glob("*/*.sql"))
    exe = shutil.which("squawk") or str(BIN / "squawk")
    gl_argv = [str(BIN / "greenlight"), "schema", "check", str(dialect_dir), "--dialect",
               dialect_dir.name, "--format", "json"]
    gl_runs, sq_runs = [], []
    run_cpu(gl_argv)  # warm-up: writes the bytecode an installed package ships with
    for _ in range(repeat):
        gl_runs.append(run_cpu(gl_argv)[1])
        sq_runs.append(run_cpu([exe, "--reporter", "json", *map(str, files)])[1])
    gl, sq = min(gl_runs), min(sq_runs)
    print(f"  one process each over {len(files)} files, best of {repeat}: greenlight "
          f"{gl:.3f} s CPU, squawk {sq:.3f} s CPU -> ratio {gl / sq:.1f}x (goal <= 3x); floor "
          f"(python + imports, no files): {python_floor():.3f} s")


def python_floor() -> float:
    """Interpreter start plus every module a PostgreSQL ``schema check`` imports (libpg_query is
    reached through ctypes, without pglast's Python package)."""
    return min(run_cpu([str(BIN / "python"), "-c", "import greenlight.cli.main, "
                        "greenlight.cli.schema, schema_review.review, schema_review.render, "
                        "schema_review.parse_postgres"])[1] for _ in range(3))


def corpus_rows(corpus: Path, repeat: int) -> None:
    manifest_path = corpus / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    print(f"corpus {corpus}:")
    for entry in manifest.get("repositories", []):
        print(f"  {entry['repo']:22s} {entry['commit'][:12]} {entry['dialect']:8s} "
              f"{entry['files']} files")
    for dialect_dir in sorted(p for p in corpus.iterdir() if p.is_dir()):
        dialect = dialect_dir.name
        totals: dict = collections.defaultdict(int)
        totals["gl_rules"] = collections.Counter()
        totals["sq_rules"] = collections.Counter()
        disagreements: list[str] = []
        for repo_dir in sorted(p for p in dialect_dir.iterdir() if p.is_dir()):
            measure_repo(repo_dir, dialect, totals, disagreements)
        print(f"\n{dialect}: {totals['files']} files, {totals['statements']} statements, "
              f"{totals['flagged']} flagged ({totals['unparsed']} unparsed), crashes "
              f"{totals['crashes']}")
        print(f"  greenlight CLI: {totals['gl_cpu']:.2f} s CPU, {totals['gl_wall']:.2f} s wall "
              "(one process per repository, start-up included)")
        print(f"  flagged by rule: {dict(totals['gl_rules'].most_common(12))}")
        if dialect == "postgres" and not totals.get("squawk_missing"):
            print(f"  squawk:         {totals['sq_cpu']:.2f} s CPU, {totals['sq_wall']:.2f} s wall")
            ratio = totals["gl_cpu"] / totals["sq_cpu"] if totals["sq_cpu"] else float("inf")
            print(f"  CPU ratio, one process per repository: {ratio:.1f}x")
            cpu_ratio(dialect_dir, repeat)
            print(f"  statements flagged by both: {totals['both']}, only greenlight: "
                  f"{totals['only_greenlight']}, only squawk: {totals['only_squawk']} "
                  f"(squawk style rules left out); of the squawk-only ones, "
                  f"{totals['only_squawk_new_table']} are on tables created earlier in the same "
                  "repository's migrations")
            print(f"  squawk rules: {dict(totals['sq_rules'].most_common(12))}")
            for line in disagreements[:12]:
                print(f"    {line}")
        elif dialect == "postgres":
            print("  squawk: not installed (pip install squawk-cli) - no comparison")


def synthetic_rows(count: int) -> None:
    text = "".join(f"-- change {i}\nALTER TABLE t{i % 50} ADD COLUMN c{i} integer;\n"
                   for i in range(count))
    start = time.process_time()
    statements = split_statements(text, "postgres", (15,))
    split_cpu = time.process_time() - start
    start = time.process_time()
    report = review_texts([("big.sql", text)], ReviewSettings("postgres"))
    review_cpu = time.process_time() - start
    assert len(statements) == count and report.statements == count
    print(f"\nsynthetic {count:,} statements ({len(text) / 1e6:.1f} MB): split {split_cpu:.2f} s "
          f"CPU, full review {review_cpu:.2f} s CPU (goal <= 10 s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, nargs="?",
                        help="corpus directory made by bench/schema_corpus.py")
    parser.add_argument("--statements", type=int, default=100_000,
                        help="size of the synthetic one-file row")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the CPU comparison")
    args = parser.parse_args()
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {' '.join(load)}, "
          f"{os.cpu_count()} CPUs")
    if args.corpus:
        if not args.corpus.is_dir():
            print(f"{args.corpus}: not a directory (build it with bench/schema_corpus.py)",
                  file=sys.stderr)
            return 2
        corpus_rows(args.corpus, args.repeat)
    synthetic_rows(args.statements)
    return 0


if __name__ == "__main__":
    sys.exit(main())
