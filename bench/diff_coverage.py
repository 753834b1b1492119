"""Benchmark: coverage of new code on a large push, ours vs diff-cover, same inputs, one run.

Builds a repository of FILES modules, a push that changes CHANGED lines in each (over COMMITS
commits), measures a test script with ``coverage run --branch`` (about half the new functions
run), then times:
  ours       ``greenlight coverage --base B --head H --format json`` (console script)
  ours-verb  ``python -m greenlight.cli.coverage`` (the verb without the other verbs' imports)
  diff-cover ``diff-cover coverage.xml --compare-branch=B --format json:...`` (+ ``coverage xml``,
             which diff-cover needs first, timed separately)
and prints wall times, the ratios and our peak RSS.

    .venv/bin/python bench/diff_coverage.py [--files 600] [--changed 40] [--commits 1]
"""
from __future__ import annotations

import argparse
import json
import os
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


def best_of(n: int, cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    runs = [timed(cmd, cwd) for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def compare(title: str, repo: Path, tmp: Path, base: str, head: str, repeat: int) -> None:
    ours = [str(BIN / "greenlight"), "coverage", "--base", base, "--head", head,
            "--format", "json", "--output", str(tmp / "ours.json")]
    verb = [str(BIN / "python"), "-m", "greenlight.cli.coverage", *ours[2:]]
    xml = [str(BIN / "python"), "-m", "coverage", "xml", "-q", "-o", "coverage.xml"]
    theirs = [str(BIN / "diff-cover"), "coverage.xml", f"--compare-branch={base}",
              "--ignore-staged", "--ignore-unstaged", f"--format=json:{tmp / 'theirs.json'}",
              "-q"]
    timed(xml, repo)
    r_ours, r_verb = best_of(repeat, ours, repo), best_of(repeat, verb, repo)
    r_xml, r_theirs = best_of(repeat, xml, repo), best_of(repeat, theirs, repo)
    mine = json.loads((tmp / "ours.json").read_text())["totals"]
    other = json.loads((tmp / "theirs.json").read_text())
    print(f"== {title}")
    print(f"diff: {mine['changed_files']} changed files, {other.get('num_changed_lines')} "
          "changed lines (diff-cover's count)")
    print(f"ours:       {mine['new_statements']} new statements, {mine['covered_statements']} "
          f"covered, {mine['partial_branches']} partial branches, {mine['percent']}%")
    print(f"diff-cover: {other['total_num_lines']} lines, "
          f"{other['total_num_lines'] - other['total_num_violations']} covered, "
          f"{other['total_percent_covered']}%")
    print(f"{'':38s}{'wall s':>8s}{'cpu s':>8s}")
    for name, r in (("ours: greenlight coverage", r_ours),
                    ("ours: python -m greenlight.cli.coverage", r_verb),
                    ("diff-cover", r_theirs), ("coverage xml (diff-cover's input)", r_xml)):
        print(f"{name:38s}{r[0]:8.3f}{r[1]:8.3f}")
    for label, idx in (("wall", 0), ("cpu", 1)):
        print(f"ratio {label}: ours/diff-cover {r_ours[idx] / r_theirs[idx]:.3f} "
              f"(verb {r_verb[idx] / r_theirs[idx]:.3f}); ours/(coverage xml + diff-cover) "
              f"{r_ours[idx] / (r_xml[idx] + r_theirs[idx]):.3f} "
              f"(verb {r_verb[idx] / (r_xml[idx] + r_theirs[idx]):.3f})")
    print(f"peak RSS ours: verb {r_verb[2] / 1024:.0f} MB, console script "
          f"{r_ours[2] / 1024:.0f} MB (largest worker process, children excluded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--changed", type=int, default=40, help="changed lines per file")
    parser.add_argument("--commits", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
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


if __name__ == "__main__":
    main()
