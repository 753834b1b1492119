"""Benchmark: an incident report on a big history vs the naive `git log --since` + `git blame`.

Generates (once, cached under var/bench/) a repository of >= 30,000 commits over >= 2,000 files
with `git fast-import`, a deploy ledger of 500 deploys, and an incident with a 20-frame traceback
whose innermost frame points at a line a seeded bad commit changed. Then times, in the same run:

- ours:  build_report() (ledger over the horizon, git log -U0 of the window's deploys, each frame
         line followed through its file's history (history.blame_lines), attribution of blamed
         commits to deploys), with nothing cached, then the same report again (a page view)
- naive: git log --since=<window start> --name-only, then git blame of each frame's whole file

Run: .venv/bin/python bench/incident_report.py [--commits N] [--files N] [--fresh]
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenlight.deploy.ledger import Ledger  # noqa: E402
from greenlight.incidents import Incident, build_report, render_html  # noqa: E402
from greenlight.git.history import GitHistory, forget_shared_answers  # noqa: E402
from greenlight.incidents.change_index import index_deploys  # noqa: E402

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
LINES = 60
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True,
                         env=GIT_ENV)
    return out.stdout.decode()


def generate(path: Path, commits: int, files: int, deploys: int, seed: int = 7,
             reuse: bool = False) -> dict:
    """Stream a synthetic history into git fast-import; return the facts the bench needs.

    The history is deterministic (seeded), so with ``reuse`` an existing import is kept and only
    its marks (mark -> sha) are read back.
    """
    rng = random.Random(seed)
    names = [f"src/pkg{i % 50:02d}/mod{i:04d}.py" for i in range(files)]
    content = {n: [f"def f_{i}_{j}(x):  # {n}" if j % 6 == 0 else f"    v{j} = x + {j}"
                   for j in range(LINES)] for i, n in enumerate(names)}
    span = timedelta(days=30)
    step = span / commits
    out: list[bytes] = []

    def blob(lines: list[str]) -> bytes:
        data = ("\n".join(lines) + "\n").encode()
        return b"data %d\n" % len(data) + data

    def commit(mark: int, when: datetime, author: str, message: str, ops: list[bytes]) -> None:
        stamp = f"{int(when.timestamp())} +0000".encode()
        msg = message.encode()
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(b"author " + author.encode() + b" " + stamp + b"\n")
        out.append(b"committer " + author.encode() + b" " + stamp + b"\n")
        out.append(b"data %d\n" % len(msg) + msg + b"\n")
        if mark > 1:
            out.append(b"from :%d\n" % (mark - 1))
        out.extend(ops)
        out.append(b"\n")

    authors = [f"Dev {i} <dev{i}@example.com>" for i in range(40)]
    commit(1, EPOCH, authors[0], "initial import",
           [b"M 100644 inline " + n.encode() + b"\n" + blob(content[n]) for n in names])
    per_deploy = commits // deploys
    incident_deploy = deploys - 20            # the incident comes after this deploy
    bad_mark = incident_deploy * per_deploy - per_deploy // 3
    bad = None
    for mark in range(2, commits + 1):
        name = names[rng.randrange(files)]
        lines = content[name]
        if mark == bad_mark:
            target = LINES // 2 + 1
            lines[target] = "    v_bad = x / 0  # the seeded bad change"
            bad = (name, target + 1)
            message = "speed up totals (seeded bad commit)"
        else:
            for _ in range(rng.randint(1, 3)):
                j = rng.randrange(LINES)
                if j % 6:
                    lines[j] = f"    v{j} = x + {rng.randrange(10**6)}  # c{mark}"
            message = f"change {mark} in {name}"
        ops = [b"M 100644 inline " + name.encode() + b"\n" + blob(lines)]
        commit(mark, EPOCH + step * mark, authors[mark % len(authors)], message, ops)
    marks = path / "marks"
    if not (reuse and marks.exists()):
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "fast-import", "--quiet", f"--export-marks={marks}.tmp", stdin=b"".join(out))
        git(path, "reset", "-q", "--hard", "main")
        # What a hosted repository has after its first gc: a commit-graph with changed paths.
        git(path, "commit-graph", "write", "--reachable", "--changed-paths")
        Path(f"{marks}.tmp").rename(marks)
    shas = {}
    for line in marks.read_text().splitlines():
        mark, sha = line.split()
        shas[int(mark[1:])] = sha
    return {"shas": shas, "per_deploy": per_deploy, "bad_mark": bad_mark, "bad": bad,
            "step": step, "incident_deploy": incident_deploy, "names": names}


def fill_ledger(ledger: Ledger, facts: dict, deploys: int, repo: Path,
                index_times: list[float]) -> datetime:
    """500 deploys, each shipping the commits since the previous one; returns incident start.

    Each deploy also brings the change index up to its sha, as the deploy step does
    (``index_deploys``); the time of each is appended to ``index_times``."""
    shas, per, step = facts["shas"], facts["per_deploy"], facts["step"]
    previous = None
    incident_at = None
    history = GitHistory(repo)
    for d in range(1, deploys + 1):
        mark = d * per
        at = EPOCH + step * mark + timedelta(minutes=5)
        deploy_id = ledger.start_deploy(shas[mark], previous, hosts=["web1", "web2"], at=at)
        for host in ("web1", "web2"):
            ledger.record_host_release(host, shas[mark], deploy_id, at=at + timedelta(minutes=1))
        ledger.finish_deploy(deploy_id, "success", at=at + timedelta(minutes=2))
        t = time.perf_counter()
        problem = index_deploys(ledger.engine, history, [shas[mark]])
        index_times.append(time.perf_counter() - t)
        if problem:
            raise SystemExit(problem)
        if d == facts["incident_deploy"]:
            incident_at = at + timedelta(minutes=20)
        previous = shas[mark]
    return incident_at


def traceback_for(facts: dict, live_sha: str, repo: Path, frames: int = 20) -> str:
    rng = random.Random(11)
    lines = ["Traceback (most recent call last):"]
    picks = rng.sample(facts["names"], frames - 1)
    for name in picks:
        lines.append(f'  File "/srv/shop/releases/{live_sha[:12]}/{name}", '
                     f'line {rng.randrange(1, LINES)}, in handler')
        lines.append("    call()")
    bad_name, bad_line = facts["bad"]
    lines.append(f'  File "/srv/shop/releases/{live_sha[:12]}/{bad_name}", line {bad_line}, '
                 f"in total")
    lines.append("ZeroDivisionError: division by zero")
    return "\n".join(lines) + "\n"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (git)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def naive(repo: Path, since: datetime, until: datetime, live_sha: str, trace: str) -> int:
    """What one would do by hand: every commit since the window, then blame each frame's file."""
    log = git(repo, "log", f"--since={since.isoformat()}", f"--until={until.isoformat()}",
              "--name-only", "--format=%H %an %s", live_sha)
    from greenlight.incidents.traces import map_frames, parse_frames
    files = git(repo, "ls-tree", "-r", "--name-only", live_sha).split()
    frames, _ = map_frames(parse_frames(trace), files)
    for frame in frames:
        git(repo, "blame", live_sha, "--", frame.repo_path)
    return len(log.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=30_000)
    parser.add_argument("--files", type=int, default=2_000)
    parser.add_argument("--deploys", type=int, default=500)
    parser.add_argument("--fresh", action="store_true", help="regenerate the repository")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = ROOT / "var" / "bench" / f"incident-{args.commits}-{args.files}-{args.deploys}"
    repo = work / "repo"
    t0 = time.perf_counter()
    facts = generate(repo, args.commits, args.files, args.deploys, reuse=not args.fresh)
    gen_s = time.perf_counter() - t0
    count = int(git(repo, "rev-list", "--count", "main").strip())
    nfiles = len(git(repo, "ls-tree", "-r", "--name-only", "main").split())
    print(f"repository: {count} commits, {nfiles} files ({gen_s:.1f} s to generate or load)")

    db = work / "ledger.sqlite"
    db.unlink(missing_ok=True)
    ledger = Ledger(f"sqlite:///{db}")
    index_times: list[float] = []
    incident_at = fill_ledger(ledger, facts, args.deploys, repo, index_times)
    forget_shared_answers()
    live_sha = ledger.live_at(incident_at)["web1"]
    trace = traceback_for(facts, live_sha, repo)
    incident = Incident(title="ZeroDivisionError in totals", started_at=incident_at, trace=trace)
    print(f"ledger: {args.deploys} deploys; incident at {incident_at.isoformat()}, "
          f"20-frame traceback, window 6h")
    ordered = sorted(index_times[1:])
    print(f"change index (filled as each deploy is recorded): first deploy {index_times[0]:.2f} s "
          f"(its history from the root), then median {ordered[len(ordered) // 2] * 1000:.0f} ms, "
          f"max {ordered[-1] * 1000:.0f} ms per deploy")

    ours, warm, cpus, naive_times, walks, walk_cpus = [], [], [], [], [], []
    report = None
    for _ in range(args.runs):
        forget_shared_answers()                # cold: nothing cached in this process
        t, cpu = time.perf_counter(), _cpu()
        report = build_report(incident, ledger, GitHistory(repo), {"window": "6h"})
        render_html(report)
        ours.append(time.perf_counter() - t)
        cpus.append(_cpu() - cpu)
        t = time.perf_counter()                # warm: the same report again (a page view)
        render_html(build_report(incident, ledger, GitHistory(repo), {"window": "6h"}))
        warm.append(time.perf_counter() - t)
        forget_shared_answers()                # cold, without the index: git walks each file
        t, cpu = time.perf_counter(), _cpu()
        render_html(build_report(incident, ledger, GitHistory(repo),
                                 {"window": "6h", "change_index": False}))
        walks.append(time.perf_counter() - t)
        walk_cpus.append(_cpu() - cpu)
        t = time.perf_counter()
        naive_commits = naive(repo, incident_at - timedelta(hours=6), incident_at, live_sha, trace)
        naive_times.append(time.perf_counter() - t)
    bad_sha = facts["shas"][facts["bad_mark"]]
    top = report.suspects[0]
    print(f"report: {len(report.timeline)} deploys on the timeline, {len(report.suspects)} "
          f"suspects, {len(report.frames)} frames mapped")
    print(f"top suspect: {top.commit.sha[:12]} {top.commit.summary!r} score {top.score:.1f} "
          f"({'the seeded bad commit' if top.commit.sha == bad_sha else 'NOT the seeded commit'})")
    best_ours, best_naive = min(ours), min(naive_times)
    print(f"ours  (build_report + render_html, nothing cached, best of {args.runs}): "
          f"{best_ours:.3f} s wall (runs {', '.join(f'{t:.2f}' for t in ours)}), CPU with git "
          f"{min(cpus):.2f} s  [goal <= 1 s: {'met' if best_ours <= 1 else 'MISSED'}]")
    print(f"ours without the change index (each file's history walked in git, nothing cached): "
          f"{min(walks):.3f} s wall (runs {', '.join(f'{t:.2f}' for t in walks)}), CPU with git "
          f"{min(walk_cpus):.2f} s")
    print(f"ours again (the same report, git's answers cached in the process, as a page view): "
          f"{min(warm):.3f} s")
    print(f"naive (git log --since + git blame per frame, best of {args.runs}): "
          f"{best_naive:.3f} s  ({naive_commits} log lines, no ranking)")
    print(f"ratio naive/ours: {best_naive / best_ours:.1f}x")
    ledger.close()
    return 0 if top.commit.sha == bad_sha else 1


if __name__ == "__main__":
    sys.exit(main())
