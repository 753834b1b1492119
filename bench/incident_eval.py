"""Evaluate incident ranking on real history: SZZ-style incidents from public Python projects.

For each repository given (a git directory, bare is fine; fetched, never committed here):

1. The deploy ledger: one deploy per first-parent commit of HEAD at its commit time, imported
   with ``greenlight.incidents.deploy_import`` (the same code as ``greenlight deploys import
   --from-git``), one host so the ledger knows what was live when.
2. Bug fixes: non-merge commits whose subject says fix/bug (not typo/docs/tests/style) and that
   change application code (``.py`` outside tests/docs/examples). The lines a fix removed or
   changed are blamed (``-w -M -C``) at its parent; the commit owning most of them is the
   culprit (the SZZ rule), and the culprit's deploy (the first first-parent commit containing
   it) is the answer.
3. The incident: at a random deploy between the culprit's and the fix's (so the bug is live;
   some deploys later, at most a year), half an hour after it went live (or halfway to the next
   deploy). The buggy line is found at that sha by blame (the culprit still owns it, same text).
4. Two trace shapes. Shape 1: a library frame, up to two callers found by ``git grep`` of the
   function's name, then the buggy line innermost. Shape 2: shape 1 plus one more innermost
   frame in another function (one the buggy line calls when it can be found, else a neighbour),
   on a line the culprit did not touch.

Rankings compared, each a list of deploys: Greenlight's report (default settings: 6h window,
365d horizon); the newest deploy in 7 days first; deploys touching a file of the trace, newest
first (within the horizon); ``git blame -w -M -C -L n,n`` of the trace lines at the deployed sha
(innermost first) mapped to the deploy that shipped each commit, within 7 days; the same at any
age. Prints top-1/3/5 per shape and ranking, and the time per Greenlight report (wall and CPU
including git's).

Run: .venv/bin/python bench/incident_eval.py /work/.mirror/pallets+click/repo ... [--per-repo 20]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from greenlight.deploy.ledger import Ledger, deploys  # noqa: E402
from greenlight.git.history import GitHistory, forget_shared_answers  # noqa: E402
from greenlight.incidents.attribution import attribute  # noqa: E402
from greenlight.incidents.build import build_report  # noqa: E402
from greenlight.incidents.change_index import index_deploys  # noqa: E402
from greenlight.incidents.correlate import Weights  # noqa: E402
from greenlight.incidents.deploy_import import (  # noqa: E402
    ImportedDeploy,
    import_deploys,
    parse_history,
)
from greenlight.incidents.model import Deploy, Incident  # noqa: E402

FIX = re.compile(r"\b(fix(es|ed|ing)?|bug|regression|crash)\b", re.I)
NOT_A_BUG = re.compile(r"\b(typo|doc|docs|documentation|readme|changelog|test|tests|lint|flake8|"
                       r"mypy|typing|type hints?|style|format|black|ruff|ci|release|version|"
                       r"spelling|comment|warning)\b", re.I)
NOT_APP = {"tests", "test", "testing", "docs", "doc", "examples", "example", "scripts",
           "benchmarks", "bench", "artwork", ".github", "tools"}
HORIZON = timedelta(days=365)
WEEK = timedelta(days=7)
SHAPES = ("shape 1: innermost frame = the buggy line",
          "shape 2: one more innermost frame, another function")
RANKINGS = ("Greenlight (default settings)", "newest deploy in 7 days first",
            "deploys touching a trace file, newest first", "blame -L -> deploy, within 7 days",
            "blame -L -> deploy, any age")


def is_app(path: str) -> bool:
    parts = path.split("/")
    return (path.endswith(".py") and not NOT_APP.intersection(parts)
            and not parts[-1].startswith(("test_", "conftest")) and parts[-1] != "setup.py")


@dataclass
class Case:
    repo: str
    fix: str
    culprit: str
    answer: int                 # deploy id that shipped the culprit
    live: str                   # deployed sha at the incident
    at: datetime
    age_days: float
    frames: list[tuple[str, int, str]] = field(default_factory=list)   # shape 1, outermost first
    extra: tuple[str, int, str] | None = None                         # shape 2's innermost


class Corpus:
    """One repository, its first-parent deploy ledger and the git questions the bench asks."""

    def __init__(self, path: str, workdir: Path, change_index: bool = True):
        self.path = path
        self.change_index = change_index
        self.history = GitHistory(path)
        self.head = self.history.resolve("HEAD")
        self.line = self.history.first_parent_line("HEAD")
        self.ledger = Ledger(f"sqlite:///{workdir / (Path(path).parent.name + '.sqlite')}")
        rows = [ImportedDeploy(sha=p.sha, deployed_at=p.at, previous_sha=p.previous,
                               hosts=("web1",), origin=f"git:{i}")
                for i, p in enumerate(self.line)]
        import_deploys(self.ledger, rows, source="bench")
        self.index_seconds = 0.0
        if change_index:        # as `greenlight deploys import` does after importing
            began = time.perf_counter()
            problem = index_deploys(self.ledger.engine, self.history, [self.head])
            if problem:
                raise SystemExit(problem)
            self.index_seconds = time.perf_counter() - began
        with self.ledger.engine.connect() as conn:
            records = conn.execute(select(deploys.c.id, deploys.c.sha, deploys.c.started_at,
                                          deploys.c.previous_sha)).all()
        self.deploys = sorted((Deploy(id=r.id, sha=r.sha, previous_sha=r.previous_sha,
                                      started_at=r.started_at, finished_at=r.started_at,
                                      outcome="success") for r in records),
                              key=lambda d: (d.live_from, d.id))
        self.by_sha = {d.sha: d for d in self.deploys}
        self.index = {d.id: i for i, d in enumerate(self.deploys)}
        out = self.history._run("log", "--first-parent", "-m", "--name-only",
                                "--format=%x00%H", "HEAD", what="log --name-only")
        self.files: dict[str, set[str]] = {}
        for chunk in out.split("\0")[1:]:
            lines = chunk.strip().splitlines()
            if lines:
                self.files[lines[0]] = set(lines[1:])

    def deploy_of(self, commit: str) -> Deploy | None:
        answer = attribute(commit, self.deploys, self.history.is_ancestor)
        return answer.deploy if answer.status == "shipped" else None

    def grep(self, sha: str, pattern: str) -> list[tuple[str, int, str]]:
        try:
            out = self.history._git.execute(["git", "grep", "-n", "-E", "-e", pattern, sha,
                                             "--", "*.py"], stdout_as_string=True)
        except Exception:                       # git grep exits 1 when nothing matches
            return []
        found = []
        for line in out.splitlines():
            _, path, number, text = line.split(":", 3)
            if is_app(path):
                found.append((path, int(number), text))
        return found


def _old_lines(corpus: Corpus, fix: str) -> dict[str, list[int]]:
    """Old-side line numbers a fix removed or changed, per application file (code lines only)."""
    out = corpus.history._run("diff", "-U0", "--no-color", "--no-ext-diff", "-M", f"{fix}^",
                              fix, "--", what="diff")
    lines: dict[str, list[int]] = {}
    path = None
    for line in out.splitlines():
        if line.startswith("--- "):
            path = line[6:] if line.startswith("--- a/") else None
        elif line.startswith("@@ ") and path and is_app(path):
            m = re.match(r"^@@ -(\d+)(?:,(\d+))?", line)
            start = int(m.group(1))
            count = int(m.group(2)) if m.group(2) is not None else 1
            lines.setdefault(path, []).extend(range(start, start + count))
    return lines


def _is_code(text: str) -> bool:
    stripped = text.strip()
    return (bool(re.search(r"[A-Za-z0-9]", stripped)) and not stripped.startswith(("#", '"', "'"))
            and stripped not in ("else:", "try:", "pass", "return", "finally:"))


def _enclosing_def(text: list[str], line: int) -> tuple[str, int] | None:
    """The name and line of the function enclosing ``line`` (1-based), by indentation."""
    indent = len(text[line - 1]) - len(text[line - 1].lstrip())
    for n in range(line - 1, 0, -1):
        src = text[n - 1]
        m = re.match(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(", src)
        if m and len(m.group(1)) < indent:
            return m.group(2), n
    return None


def _body_line(corpus: Corpus, sha: str, path: str, def_line: int, culprit: str,
               ) -> int | None:
    """A code line in the body of the function at ``def_line`` the culprit did not touch
    (a ``raise`` when there is one: where such frames usually fail)."""
    text = (corpus.history.file_at(sha, path) or "").splitlines()
    if def_line > len(text):
        return None
    indent = len(text[def_line - 1]) - len(text[def_line - 1].lstrip())
    blame = corpus.history.blame_file(sha, path)
    body = []
    for n in range(def_line + 1, len(text) + 1):
        src = text[n - 1]
        if src.strip() and len(src) - len(src.lstrip()) <= indent:
            break
        if _is_code(src) and not src.strip().startswith(("def ", "@", ")")) \
                and n in blame and blame[n].commit != culprit:
            body.append(n)
    raises = [n for n in body if text[n - 1].strip().startswith("raise ")]
    return (raises or body or [None])[0]


def build_cases(corpus: Corpus, count: int, rng: random.Random, budget: int = 400,
                ) -> tuple[list[Case], dict[str, int]]:
    skipped: dict[str, int] = {}

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    out = corpus.history._run("log", "--no-merges", "--format=%H%x00%s", "HEAD", what="log")
    fixes = [line.split("\0", 1) for line in out.splitlines() if "\0" in line]
    fixes = [sha for sha, subject in fixes if FIX.search(subject) and not NOT_A_BUG.search(subject)]
    rng.shuffle(fixes)
    cases: list[Case] = []
    for fix in fixes[:budget]:
        if len(cases) >= count:
            break
        old = _old_lines(corpus, fix)
        owners: dict[str, list[tuple[str, int, str]]] = {}
        for path, numbers in old.items():
            blame = corpus.history.blame_file(f"{fix}^", path)
            for n in numbers:
                hit = blame.get(n)
                if hit and _is_code(hit.text):
                    owners.setdefault(hit.commit, []).append((path, n, hit.text))
        if not owners:
            skip("fix changes no code line")
            continue
        culprit = max(owners, key=lambda c: len(owners[c]))
        shipped, fixed = corpus.deploy_of(culprit), corpus.deploy_of(fix)
        if shipped is None or fixed is None:
            skip("culprit or fix never deployed")
            continue
        first, last = corpus.index[shipped.id], corpus.index[fixed.id]
        if last <= first:
            skip("fix deployed with the culprit")
            continue
        choices = [i for i in range(first, last)
                   if corpus.deploys[i].live_from - shipped.live_from <= HORIZON]
        live = corpus.deploys[rng.choice(choices)]
        nxt = corpus.deploys[corpus.index[live.id] + 1]
        at = live.live_from + min(timedelta(minutes=30), (nxt.live_from - live.live_from) / 2)
        # The buggy line at the live sha: still the culprit's, same text.
        path, _, text = owners[culprit][0]
        blame = corpus.history.blame_file(live.sha, path)
        found = [n for n, hit in blame.items()
                 if hit.commit == culprit and hit.text.strip() == text.strip()]
        if not found:
            skip("buggy line not found at the live sha")
            continue
        line = found[0]
        source = (corpus.history.file_at(live.sha, path) or "").splitlines()
        enclosing = _enclosing_def(source, line)
        func = enclosing[0] if enclosing else "<module>"
        case = Case(repo=corpus.path, fix=fix, culprit=culprit, answer=shipped.id,
                    live=live.sha, at=at, age_days=(at - shipped.live_from).total_seconds() / 86400)
        frames = [(path, line, func)]
        name = func
        for _ in range(2):                       # up to two callers, outward
            if name == "<module>":
                break
            calls = [c for c in corpus.grep(live.sha, rf"\b{name}\(")
                     if not re.match(r"\s*(async\s+)?def\s", c[2])]
            if not calls:
                break
            cpath, cline, _ = rng.choice(calls)
            csource = (corpus.history.file_at(live.sha, cpath) or "").splitlines()
            outer = _enclosing_def(csource, cline)
            name = outer[0] if outer else "<module>"
            frames.insert(0, (cpath, cline, name))
        case.frames = frames
        # Shape 2: a function the buggy line calls, else a neighbour in the same file.
        called = [m for m in re.findall(r"\b([A-Za-z_]\w*)\(", text) if m != func]
        for name in called:
            defs = corpus.grep(live.sha, rf"^\s*(async\s+)?def\s+{name}\(")
            for dpath, dline, _ in defs[:3]:
                body = _body_line(corpus, live.sha, dpath, dline, culprit)
                if body:
                    case.extra = (dpath, body, name)
                    break
            if case.extra:
                break
        if case.extra is None:
            for n in range(len(source), 0, -1):
                m = re.match(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(", source[n - 1])
                if m and m.group(1) != func:
                    body = _body_line(corpus, live.sha, path, n, culprit)
                    if body:
                        case.extra = (path, body, m.group(1))
                        break
        if case.extra is None:
            skip("no other function for shape 2")
            continue
        cases.append(case)
    return cases, skipped


def trace(case: Case, shape: int, package: str) -> str:
    frames = list(case.frames) + ([case.extra] if shape == 2 and case.extra else [])
    lines = ["Traceback (most recent call last):",
             f'  File "/srv/app/.venv/lib/python3.12/site-packages/{package}/__init__.py", '
             f"line 12, in <module>", "    main()"]
    for path, line, func in frames:
        lines += [f'  File "/srv/app/releases/{case.live[:12]}/{path}", line {line}, in {func}',
                  "    ..."]
    lines.append("ValueError: boom")
    return "\n".join(lines) + "\n"


def _features(report) -> list[dict]:
    """Each suspect's evidence in short (for --json): to study a ranking rule offline."""
    return [{"deploy": s.deploy.id, "sha": s.commit.sha[:12], "tier": s.tier,
             "score": round(s.score, 2),
             "lines": [[e.frame.depth, round(e.points, 2)] for e in s.evidence
                       if e.kind == "blamed_line"],
             "other": round(sum(e.points for e in s.evidence if e.kind != "blamed_line"), 2),
             "age_days": round((report.incident.started_at - s.deploy.live_from)
                               .total_seconds() / 86400, 2)}
            for s in report.suspects[:8]]


def rank_greenlight(corpus: Corpus, case: Case, text: str, weights: Weights | None = None,
                    features: list | None = None) -> tuple[list[int], float, float]:
    forget_shared_answers()             # each report timed with nothing cached
    before_self = time.process_time()
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    with GitHistory(corpus.path) as history:
        report = build_report(Incident(title="bench", started_at=case.at, trace=text),
                              corpus.ledger, history, {"window": "6h", "horizon": "365d",
                                                       "change_index": corpus.change_index},
                              weights)
    wall = time.perf_counter() - began
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - before_self
           + after_children.ru_utime - before_children.ru_utime
           + after_children.ru_stime - before_children.ru_stime)
    if features is not None:
        features.extend(_features(report))
    return list(dict.fromkeys(s.deploy.id for s in report.suspects)), wall, cpu


def baselines(corpus: Corpus, case: Case, shape: int) -> list[list[int]]:
    live_index = corpus.index[corpus.by_sha[case.live].id]
    before = [d for d in corpus.deploys[:live_index + 1] if d.live_from <= case.at]
    newest = [d.id for d in reversed(before) if case.at - d.live_from <= WEEK]
    frames = list(case.frames) + ([case.extra] if shape == 2 and case.extra else [])
    trace_files = {p for p, _, _ in frames}
    touching = [d.id for d in reversed(before) if case.at - d.live_from <= HORIZON
                and corpus.files.get(d.sha, set()) & trace_files]
    blamed_week, blamed_any = [], []
    for path, line, _ in reversed(frames):           # innermost first
        out = corpus.history._run("blame", "--porcelain", "-w", "-M", "-C", "-L",
                                  f"{line},{line}", case.live, "--", path, what="blame -L")
        commit = out.split(" ", 1)[0]
        deploy = corpus.deploy_of(commit)
        if deploy is None:
            continue
        blamed_any.append(deploy.id)
        if case.at - deploy.live_from <= WEEK:
            blamed_week.append(deploy.id)
    return [newest, touching, list(dict.fromkeys(blamed_week)), list(dict.fromkeys(blamed_any))]


def _top(ranks: list[int | None], k: int) -> str:
    hits = sum(1 for r in ranks if r is not None and r < k)
    return f"{100 * hits / len(ranks):.0f}%" if ranks else "-"


def per_repo_tables(rows: list[dict]) -> None:
    """Top-1/3/5 of every ranking and shape, one table per repository (hits out of its cases)."""
    for repo in dict.fromkeys(r["repo"] for r in rows):
        mine = [r for r in rows if r["repo"] == repo]
        print(f"\n{repo} ({len(mine)} incidents): hits top-1 / top-3 / top-5\n\n"
              f"| ranking | shape 1 | shape 2 |\n|---|---|---|")
        for i, name in enumerate(RANKINGS):
            cells = []
            for shape in (1, 2):
                got = [r.get(f"shape{shape}_{i}") for r in mine]
                cells.append(" / ".join(str(sum(1 for g in got if g is not None and g < k))
                                        for k in (1, 3, 5)))
            print(f"| {name} | {cells[0]} | {cells[1]} |")


def import_figure(count: int = 10_000) -> tuple[float, float, int]:
    """Seconds (wall, CPU) to parse and import ``count`` JSON-lines deploys into a fresh SQLite
    ledger."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    text = "\n".join(json.dumps({"sha": f"{i:040x}", "deployed_at": (start + timedelta(
        minutes=30 * i)).isoformat(), "hosts": ["web1", "web2"], "environment": "production"})
        for i in range(count))
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/ledger.sqlite")
        began, cpu = time.perf_counter(), time.process_time()
        result = import_deploys(ledger, parse_history(text, "synthetic.jsonl"))
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
        ledger.close()
    return took, cpu, result.inserted


def grid(args: argparse.Namespace) -> int:
    """Top-1 per shape for a few weightings, on the first repository only (the tuning set)."""
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Corpus(args.repos[0], Path(tmp))
        cases, _ = build_cases(corpus, args.per_repo, rng)
        package = Path(args.repos[0]).parent.name.split("+")[-1]
        print(f"# {args.repos[0]}: {len(cases)} incidents")
        for decay in args.decays:
            for strength, cap, further in [(s, c, m) for s in args.strengths for c in args.caps
                                          for m in args.further]:
                weights = Weights(depth_decay=decay, age_strength=strength, owned_cap=cap,
                                  further_frames=further)
                tops = []
                for shape in (1, 2):
                    hits = 0
                    for case in cases:
                        ours, _, _ = rank_greenlight(corpus, case, trace(case, shape, package),
                                                     weights)
                        hits += bool(ours) and ours[0] == case.answer
                    tops.append(f"{100 * hits / len(cases):.0f}%")
                print(f"depth decay {decay}, age strength {strength}, owned cap {cap}, "
                      f"further frames {further}: "
                      f"top-1 shape 1 {tops[0]}, "
                      f"shape 2 {tops[1]}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos", nargs="+", help="git directories of public Python projects")
    parser.add_argument("--per-repo", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write every case and rank to this file")
    parser.add_argument("--no-change-index", action="store_true",
                        help="reports walk each file's history in git (no index of changes)")
    parser.add_argument("--grid", action="store_true",
                        help="only rank the first repository's incidents under a grid of weights "
                             "(depth decay x age strength) and print top-1 per shape")
    parser.add_argument("--decays", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.5, 0.7], help="depth decays for --grid")
    parser.add_argument("--strengths", type=lambda s: [float(x) for x in s.split(",")],
                        default=[0.5, 1.0, 2.0], help="age strengths for --grid")
    parser.add_argument("--caps", type=lambda s: [float(x) for x in s.split(",")],
                        default=[1.0], help="caps on a commit's trace lines for --grid")
    parser.add_argument("--further", type=lambda s: [float(x) for x in s.split(",")],
                        default=[1.0], help="weights of a commit's further frames for --grid")
    parser.add_argument("--tables-from", metavar="JSON",
                        help="only print the per-repository tables of a --json file")
    args = parser.parse_args()
    if args.tables_from:
        per_repo_tables(json.loads(Path(args.tables_from).read_text()))
        return 0
    if args.grid:
        return grid(args)
    rng = random.Random(args.seed)
    ranks: dict[tuple[int, int], list[int | None]] = {}
    walls, cpus, rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.repos:
            began = time.perf_counter()
            corpus = Corpus(path, Path(tmp), change_index=not args.no_change_index)
            cases, skipped = build_cases(corpus, args.per_repo, rng)
            span = (corpus.deploys[-1].live_from - corpus.deploys[0].live_from).days
            print(f"# {path}: HEAD {corpus.head[:12]}, {len(corpus.deploys)} deploys over "
                  f"{span} days; {len(cases)} incidents (skipped: {skipped}); "
                  f"built in {time.perf_counter() - began:.0f} s (change index "
                  f"{corpus.index_seconds:.1f} s)", flush=True)
            package = Path(path).parent.name.split("+")[-1]
            for case in cases:
                row = {"repo": path, "fix": case.fix, "culprit": case.culprit,
                       "answer": case.answer, "live": case.live, "age_days": case.age_days,
                       "frames": case.frames, "extra": case.extra}
                for shape in (1, 2):
                    row[f"shape{shape}_suspects"] = found = []
                    ours, wall, cpu = rank_greenlight(corpus, case, trace(case, shape, package),
                                                      features=found)
                    walls.append(wall)
                    cpus.append(cpu)
                    for i, ranking in enumerate([ours] + baselines(corpus, case, shape)):
                        position = ranking.index(case.answer) if case.answer in ranking else None
                        ranks.setdefault((shape, i), []).append(position)
                        row[f"shape{shape}_{i}"] = position
                rows.append(row)
            corpus.history.close()
            corpus.ledger.close()
    ages = [r["age_days"] for r in rows]
    print(f"\n{len(rows)} incidents; culprit live before the incident: median "
          f"{statistics.median(ages):.1f} days, > 6 h: {sum(a > 0.25 for a in ages)}, "
          f"> 7 days: {sum(a > 7 for a in ages)}")
    for shape in (1, 2):
        print(f"\n{SHAPES[shape - 1]}\n\n| ranking | top-1 | top-3 | top-5 |\n|---|---|---|---|")
        for i, name in enumerate(RANKINGS):
            got = ranks.get((shape, i), [])
            print(f"| {name} | {_top(got, 1)} | {_top(got, 3)} | {_top(got, 5)} |")
    per_repo_tables(rows)
    walls.sort()
    cpus.sort()
    print(f"\nGreenlight report time over {len(walls)} reports: wall median "
          f"{statistics.median(walls):.2f} s, p90 {walls[int(0.9 * (len(walls) - 1))]:.2f} s, "
          f"max {walls[-1]:.2f} s; CPU (ours + git) median {statistics.median(cpus):.2f} s, "
          f"p90 {cpus[int(0.9 * (len(cpus) - 1))]:.2f} s")
    took, cpu, inserted = import_figure()
    print(f"deploys import: {inserted} JSON-lines deploys (two hosts each) parsed and written "
          f"in one transaction: {took:.2f} s wall, {cpu:.2f} s CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
