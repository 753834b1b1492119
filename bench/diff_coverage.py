"""Benchmark: coverage of new code on a large push, ours vs diff-cover, same inputs, one run.

Builds a repository of FILES modules, a push that changes CHANGED lines in each (over COMMITS
commits), measures a test script with ``coverage run --branch`` (about half the new functions
run), then times, each best of REPEAT:
  prepare     ``greenlight coverage prepare --base B --head H -o F --run python -c pass``: the
              half that needs no test data, as the verify build runs it — one process at low
              priority, *beside the tests* (so it is not on the build's critical path)
  gate        ``greenlight coverage --base B --head H --prepared F --format json --output …``:
              what runs after the tests as a separate process (loads the data, joins, renders)
  in-process  ``greenlight coverage --base B --head H --format json --output … --run TESTS``
              (what the verify build runs): the tests are a child process, the analysis is
              prepared meanwhile and kept in memory, and the gate runs the moment they exit;
              timed from the child's last instruction to our process's exit (TESTS sleeps
              long enough for the analysis to be ready, as real tests are)
  one-shot    the same gate without --prepared (does everything after the tests)
  diff-cover  ``diff-cover coverage.xml --compare-branch=B --format json:...``
  xml         ``coverage xml``, the input diff-cover needs (timed separately)
  floor       ``python -c "import coverage"``: start-up + coverage's import, which any gate
              reading data through coverage's API pays
and prints wall/CPU times, the ratios and peak RSS. With ``--demo-runs N`` (default 5) it also
times, on the demo app, its test command followed by the gate as a separate process against the
tests run under the gate (``--run``, what the verify build runs), alternating, and prints the
medians.

    .venv/bin/python bench/diff_coverage.py [--files 600] [--changed 40] [--commits 1]
                                            [--repeat 3] [--demo-runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PYTEST_"))}
ENV.update(GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def module(i: int, version: int, changed: int) -> str:
    """A module whose functions change with ``version``: ~``changed`` new lines per version."""
    funcs = []
    for f in range(changed // 8):
        funcs.append(
            f"def f{f}(x, y={version}):\n"
            f"    \"\"\"Version {version} of f{f}.\"\"\"\n"
            f"    total = x + {version} * {f}\n"
            f"    if total > {f + version}:\n"
            f"        total -= y + {version}\n"
            f"    values = [total + {version},\n"
            f"              {version}]\n"
            f"    return sum(values) + {version}\n")
    return f"# module {i}\nimport math\n\n\n" + "\n\n".join(funcs)


def build(root: Path, files: int, changed: int, commits: int) -> tuple[Path, str, str]:
    repo = root / "repo"
    (repo / "pkg").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / ".coveragerc").write_text("[run]\nbranch = true\nrelative_files = true\n")
    for i in range(files):
        (repo / "pkg" / f"m{i:04d}.py").write_text(module(i, 0, changed))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    for c in range(1, commits + 1):
        for i in range(files):
            if i % commits == c - 1 or commits == 1:
                (repo / "pkg" / f"m{i:04d}.py").write_text(module(i, c, changed))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"push part {c}")
    head = git(repo, "rev-parse", "HEAD")
    calls = "".join(f"from pkg import m{i:04d}\n" + "".join(
        f"m{i:04d}.f{f}({f % 3})\n" for f in range(0, changed // 8, 2)) for i in range(files))
    (root / "run_tests.py").write_text(calls)
    subprocess.run([str(BIN / "python"), "-m", "coverage", "run", "--rcfile", ".coveragerc",
                    str(root / "run_tests.py")], cwd=repo, env={**ENV, "PYTHONPATH": str(repo)},
                   check=True)
    return repo, base, head


def timed(cmd: list[str], cwd: Path, ok=(0, 1)) -> tuple[float, float, int]:
    """(wall s, CPU s of the process and its children, peak RSS kB of the process itself)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def after_tests(cmd: list[str], cwd: Path, tmp: Path, sleep: float) -> tuple[float, float, int]:
    """(wall s from the end of the tests to the end of ``cmd --run TESTS``, CPU s of the gate
    after the tests, peak RSS kB)."""
    stamp = tmp / "tests-ended"
    tests = [str(BIN / "python"), "-c",
             "import os, pathlib, sys, time; time.sleep(float(sys.argv[2])); "
             "pathlib.Path(sys.argv[1]).write_text(repr(time.time())); os._exit(0)",
             str(stamp), f"{sleep}"]   # (the tests' own tear-down is not the gate's time)
    proc = subprocess.Popen([*cmd, "--run", *tests], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.time()
    err = proc.stderr.read()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"gate --run failed: {err.decode()[-2000:]}")
    # CPU: the gate's own thread after the tests ended, as the CLI reports it (a busy machine
    # stretches wall times; CPU seconds compare fairly with diff-cover's)
    cpu = re.search(r"\(([0-9.]+)s CPU\) after the tests ended", err.decode())
    return (ended - float(stamp.read_text()), float(cpu.group(1)) if cpu else float("nan"),
            usage.ru_maxrss)


def best_of(n: int, cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    runs = [timed(cmd, cwd) for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def compare(title: str, repo: Path, tmp: Path, base: str, head: str, repeat: int) -> None:
    prepared = tmp / "prepared.json"
    gate = [str(BIN / "greenlight"), "coverage", "--base", base, "--head", head,
            "--format", "json", "--output", str(tmp / "ours.json")]
    prepare = [str(BIN / "greenlight"), "coverage", "prepare", "--base", base, "--head", head,
               "-o", str(prepared), "--run", str(BIN / "python"), "-c", "pass"]
    xml = [str(BIN / "python"), "-m", "coverage", "xml", "-q", "-o", "coverage.xml"]
    theirs = [str(BIN / "diff-cover"), "coverage.xml", f"--compare-branch={base}",
              "--ignore-staged", "--ignore-unstaged", f"--format=json:{tmp / 'theirs.json'}",
              "-q"]
    floor = [str(BIN / "python"), "-c", "import coverage"]
    timed(xml, repo)
    r_one = best_of(repeat, gate, repo)
    one_shot = json.loads((tmp / "ours.json").read_text())
    r_prep = best_of(repeat, prepare, repo)
    r_gate = best_of(repeat, [*gate, "--prepared", str(prepared)], repo)
    mine = json.loads((tmp / "ours.json").read_text())
    assert mine == one_shot, "the gate with --prepared must give the one-shot gate's report"
    runs = [after_tests(gate, repo, tmp, 2 * r_prep[0] + 0.5) for _ in range(repeat)]
    r_warm = (min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs))
    assert json.loads((tmp / "ours.json").read_text()) == one_shot, \
        "the gate in the test process must give the one-shot gate's report"
    r_xml, r_theirs = best_of(repeat, xml, repo), best_of(repeat, theirs, repo)
    r_floor = best_of(repeat, floor, repo)
    mine = mine["totals"]
    other = json.loads((tmp / "theirs.json").read_text())
    print(f"== {title}")
    print(f"diff: {mine['changed_files']} changed files, {other.get('num_changed_lines')} "
          f"changed lines (diff-cover's count); prepared file {prepared.stat().st_size // 1024} kB")
    print(f"ours:       {mine['new_statements']} new statements, {mine['covered_statements']} "
          f"covered, {mine['partial_branches']} partial branches, {mine['percent']}%")
    print(f"diff-cover: {other['total_num_lines']} lines, "
          f"{other['total_num_lines'] - other['total_num_violations']} covered, "
          f"{other['total_percent_covered']}%")
    print(f"{'':52s}{'wall s':>8s}{'cpu s':>8s}{'RSS MB':>8s}")
    for name, r in (("(1) ours: prepare (beside the tests, 1 process)", r_prep),
                    ("(2) ours: gate --prepared (after the tests)", r_gate),
                    ("(2w) ours: gate --run, after the tests end", r_warm),
                    ("(3) ours: gate without --prepared (one-shot)", r_one),
                    ("(4) diff-cover", r_theirs),
                    ("(5) coverage xml (diff-cover's input)", r_xml),
                    ("floor: python -c 'import coverage'", r_floor)):
        print(f"{name:52s}{r[0]:8.3f}{r[1]:8.3f}{r[2] / 1024:8.0f}")
    print(f"ratio after the tests, in the test process (2w)/(4): wall "
          f"{r_warm[0] / r_theirs[0]:.3f}, cpu {r_warm[1] / r_theirs[1]:.3f} [goal <= 0.2]")
    for label, i in (("wall", 0), ("cpu", 1)):
        print(f"ratio {label}: after the tests, separate process (2)/(4) "
              f"{r_gate[i] / r_theirs[i]:.3f} [floor alone {r_floor[i] / r_theirs[i]:.3f}]; "
              f"one-shot (3)/(4) {r_one[i] / r_theirs[i]:.3f}; "
              "all work (1)+(2) vs (5)+(4) "
              f"{(r_prep[i] + r_gate[i]) / (r_xml[i] + r_theirs[i]):.3f}; "
              f"(2) vs (5)+(4) {r_gate[i] / (r_xml[i] + r_theirs[i]):.3f}")
    print(f"peak RSS ours (largest process, children excluded): prepare {r_prep[2] / 1024:.0f} "
          f"MB, gate --prepared {r_gate[2] / 1024:.0f} MB, one-shot {r_one[2] / 1024:.0f} MB, "
          f"gate --run {r_warm[2] / 1024:.0f} MB [goal < 200 MB]")


def demo_test_step(tmp: Path, runs: int) -> None:
    """The verify build's test command on the demo app, alone and under ``prepare --run``."""
    import shutil
    import statistics

    demo = tmp / "demo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "demo", demo,
                    ignore=shutil.ignore_patterns("__pycache__", ".coverage*", ".venv"))
    (demo / ".gitignore").write_text(".coverage*\n__pycache__/\n*.xml\n.greenlight*\n")
    git(demo, "init", "-q", "-b", "main")
    git(demo, "add", "-A")
    git(demo, "commit", "-q", "-m", "demo")
    base = git(demo, "rev-parse", "HEAD")
    logic = demo / "app" / "logic.py"
    logic.write_text(logic.read_text() + "\n\ndef loyalty(total, visits):\n"
                     "    if visits >= 10:\n        return round(total * 0.95, 2)\n"
                     "    return total\n")
    git(demo, "commit", "-q", "-am", "loyalty")
    head = git(demo, "rev-parse", "HEAD")
    tests = [str(BIN / "python"), "-m", "coverage", "run", "-m", "pytest", "-n", "2", "-q",
             "-p", "no:cacheprovider", "-p", "no:greenlight_shard", "--junitxml=junit.xml"]
    gate = [str(BIN / "greenlight"), "coverage", "--base", base, "--head", head, "--combine",
            "--format", "json", "--output", str(tmp / "demo-report.json")]
    under = [*gate, "--tests-status", "--run", *tests]   # what the verify build runs

    def tests_then_gate() -> float:
        return timed(tests, demo, ok=(0,))[0] + timed(gate, demo, ok=(0, 1))[0]

    separate, together = [], []
    for _ in range(runs):
        for run, times in ((tests_then_gate, separate),
                           (lambda: timed(under, demo, ok=(0,))[0], together)):
            for stale in demo.glob(".coverage*"):
                stale.unlink()
            times.append(run())
    a, b = statistics.median(separate), statistics.median(together)
    print(f"== demo test step + coverage gate ({runs} runs each, alternating; "
          "`coverage run -m pytest -n 2`)")
    print(f"tests, then the gate as a process {a:.2f} s; tests under the gate (--run) {b:.2f} s "
          f"(median): {b - a:+.2f} s ({100 * (b - a) / a:+.1f}%); runs "
          f"{', '.join(f'{t:.2f}' for t in separate)} vs {', '.join(f'{t:.2f}' for t in together)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--changed", type=int, default=40, help="changed lines per file")
    parser.add_argument("--commits", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo-runs", type=int, default=5,
                        help="runs of the demo's test command each way (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-diffcov-") as tmp:
        t0 = time.perf_counter()
        repo, base, head = build(Path(tmp), args.files, args.changed, args.commits)
        print(f"fixture: {args.files} files, built and measured in "
              f"{time.perf_counter() - t0:.1f}s")
        compare("large push: every file changed", repo, Path(tmp), base, head, args.repeat)
        # a typical push on the same large project: a handful of files
        for i in range(0, args.files, max(1, args.files // 10)):
            path = repo / "pkg" / f"m{i:04d}.py"
            path.write_text(module(i, 99, args.changed))
        git(repo, "commit", "-q", "-am", "small push")
        subprocess.run([str(BIN / "python"), "-m", "coverage", "run", "--rcfile", ".coveragerc",
                        str(Path(tmp) / "run_tests.py")], cwd=repo,
                       env={**ENV, "PYTHONPATH": str(repo)}, check=True)
        compare("small push (10 files) on the same project", repo, Path(tmp), head,
                git(repo, "rev-parse", "HEAD"), args.repeat)
        if args.demo_runs:
            demo_test_step(Path(tmp), args.demo_runs)


if __name__ == "__main__":
    main()
