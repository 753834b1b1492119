"""pytest plugin (entry point ``greenlight_shard``): run one shard of a duration-balanced plan.

    pytest --shard 2/4 --shard-plan plan.json            # plan from ``greenlight shards plan``
    pytest --shard 2/4 --shard-durations .test_durations # plan computed here, from durations
    pytest --shard 2/4 -n auto --shard-report shard2.json --shard-rerun-report rerun2.json

It loads in every pytest run of every project that installs Greenlight, so without ``--shard``
it registers nothing but its options. Selection happens in ``pytest_collection_modifyitems``,
which runs in each xdist worker on the same collection, so every worker deselects the same tests
and ``-n auto`` composes with sharding.

Standalone: with ``--shard-plan`` this file needs only the standard library and pytest, so a
Buildbot shard build ships it to a worker whose test venv lacks Greenlight (as the module
``greenlight_shard``, loaded with ``-p greenlight_shard``: where Greenlight is installed that
name is its entry point instead). Only ``--shard-durations`` imports Greenlight's planner.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPORT_KEY = "greenlight_shard"
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
RERUN_TIMEOUT = 600.0  # seconds per test rerun alone
RERUN_LIMIT = 25       # more failures than this in one shard are real: no reruns past it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenlight-shard", "Greenlight: run one duration-balanced shard")
    group.addoption("--shard", metavar="i/N", default=None,
                    help="run shard i of N (1-based), e.g. --shard 2/4")
    group.addoption("--shard-plan", metavar="FILE", default=None,
                    help="plan JSON written by `greenlight shards plan --format json`")
    group.addoption("--shard-durations", metavar="FILE", default=None,
                    help="pytest-split .test_durations JSON: plan the shards here from it")
    group.addoption("--shard-group-by-module", action="store_true", default=False,
                    help="keep the tests of one module in one shard (with --shard-durations)")
    group.addoption("--shard-report", metavar="FILE", default=None,
                    help="write JSON: collected, selected and executed test ids with outcomes")
    group.addoption("--shard-rerun-report", metavar="FILE", default=None,
                    help="after the run, rerun each failed test alone in a fresh pytest "
                         "process and write the verdicts (flaky: passed alone) as JSON here")


def parse_shard_spec(spec: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raises pytest.UsageError with what was wrong."""
    index, sep, count = str(spec).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise pytest.UsageError(f"--shard {spec!r}: expected i/N with integers, e.g. 2/4")
    if not sep or n < 1 or not 1 <= i <= n:
        raise pytest.UsageError(f"--shard {spec!r}: expected i/N with 1 <= i <= N, e.g. 2/4")
    return i, n


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("shard", None)
    needs_shard = [opt for opt in ("shard_plan", "shard_durations", "shard_report",
                                   "shard_rerun_report") if config.getoption(opt, None)]
    if spec is None:
        if needs_shard:
            flag = "--" + needs_shard[0].replace("_", "-")
            raise pytest.UsageError(f"{flag} needs --shard i/N")
        return
    index, count = parse_shard_spec(spec)
    if config.getoption("shard_plan") and config.getoption("shard_durations"):
        raise pytest.UsageError("--shard-plan and --shard-durations exclude each other: "
                                "pass the plan, or the durations to plan from")
    config.pluginmanager.register(ShardSelector(config, index, count), "greenlight-shard-selector")


def _fallback_shard(test_id: str, count: int) -> int:
    """A stable 1-based shard for a test the plan does not know (added since planning)."""
    digest = hashlib.sha256(test_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def _load_plan(path: str, count: int) -> dict[str, tuple[int, float]]:
    """Plan file -> {test id: (shard, predicted seconds of that shard)}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise pytest.UsageError(f"--shard-plan {path}: cannot read ({exc.strerror})")
    except json.JSONDecodeError as exc:
        raise pytest.UsageError(f"--shard-plan {path}:{exc.lineno}: not JSON ({exc.msg})")
    shards = data.get("shards") if isinstance(data, dict) else None
    if not isinstance(shards, list):
        raise pytest.UsageError(f"--shard-plan {path}: expected an object with a \"shards\" "
                                "list (the output of `greenlight shards plan --format json`)")
    if len(shards) != count:
        raise pytest.UsageError(f"--shard-plan {path} has {len(shards)} shards but --shard "
                                f"asks for N={count}; plan again with --shards {count}")
    where = {}
    for k, shard in enumerate(shards, start=1):
        index = int(shard.get("index", k))
        for test_id in shard.get("tests", []):
            where[test_id] = (index, float(shard.get("predicted_seconds", 0.0)))
    return where


class ShardSelector:
    """Registered only when ``--shard`` is given: selects, records, reports."""

    def __init__(self, config: pytest.Config, index: int, count: int):
        self.config = config
        self.index, self.count = index, count
        self.collected: list[str] = []
        self.selected: list[str] = []
        self.unplanned: list[str] = []
        self.unplanned_label = "not in the plan (placed by hash)"
        self.predicted = 0.0
        self.results: dict[str, dict] = {}
        self.started = time.time()
        self.is_worker = hasattr(config, "workerinput")
        self.reruns: dict | None = None
        self.messages: dict[str, str] = {}  # first failure text of each failed test

    # -- selection (runs in the single process, or in every xdist worker) ----------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        ids = [item.nodeid for item in items]
        shard_of = self._plan(ids)
        keep, drop = [], []
        for item in items:
            (keep if shard_of[item.nodeid] == self.index else drop).append(item)
        self.collected = ids
        self.selected = [item.nodeid for item in keep]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def _plan(self, ids: list[str]) -> dict[str, int]:
        plan_file = self.config.getoption("shard_plan")
        if plan_file:
            where = _load_plan(plan_file, self.count)
            shard_of = {}
            for test_id in ids:
                if test_id in where:
                    shard_of[test_id] = where[test_id][0]
                else:
                    self.unplanned.append(test_id)
                    shard_of[test_id] = _fallback_shard(test_id, self.count)
            self.predicted = next((p for s, p in where.values() if s == self.index), 0.0)
            return shard_of
        try:
            from greenlight.errors import GreenlightError
            from greenlight.shards.durations_file import read_durations_file
            from greenlight.shards.planner import plan_shards
        except ImportError:
            raise pytest.UsageError("--shard without --shard-plan plans the shards here, which "
                                    "needs Greenlight installed; pass --shard-plan FILE")

        durations_file = self.config.getoption("shard_durations")
        try:
            durations = read_durations_file(durations_file) if durations_file else {}
            plan = plan_shards(ids, durations, self.count,
                               group_by_module=self.config.getoption("shard_group_by_module"))
        except GreenlightError as exc:
            raise pytest.UsageError(f"--shard-durations: {exc}")
        self.unplanned = list(plan.unknown)
        self.unplanned_label = "without a recorded duration (given a mean)"
        self.predicted = plan.shards[self.index - 1].predicted_seconds
        return {t: s.index for s in plan.shards for t in s.tests}

    # -- results (single process, or the xdist controller) -------------------------------------
    def pytest_runtest_logreport(self, report) -> None:
        entry = self.results.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0})
        entry["seconds"] += float(getattr(report, "duration", 0.0) or 0.0)
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = "skipped" if report.skipped else "passed"
        if _RANK[outcome] > _RANK[entry["outcome"]]:
            entry["outcome"] = outcome
        if report.failed and report.nodeid not in self.messages:
            self.messages[report.nodeid] = str(report.longreprtext)[-2000:]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        data = getattr(node, "workeroutput", {}).get(REPORT_KEY)
        if data and not self.collected:
            self.collected = data["collected"]
            self.selected = data["selected"]
            self.unplanned = data["unplanned"]
            self.predicted = data["predicted"]

    def pytest_sessionfinish(self, session) -> None:
        if self.is_worker:
            self.config.workeroutput[REPORT_KEY] = {
                "collected": self.collected, "selected": self.selected,
                "unplanned": self.unplanned, "predicted": self.predicted}
            return
        path = self.config.getoption("shard_report")
        if path:
            _write_json(path, self.report())
        rerun_path = self.config.getoption("shard_rerun_report")
        if rerun_path:
            failed = [t for t, r in self.results.items() if r["outcome"] in ("failed", "error")]
            self.reruns = rerun_failures(
                failed, {t: (self.results[t]["outcome"], self.messages.get(t, "")) for t in failed},
                self.config.rootpath)
            _write_json(rerun_path, self.reruns)

    def report(self) -> dict:
        """The shard report JSON contract (see docs/shards.md)."""
        return {"shard": self.index, "shards": self.count,
                "predicted_seconds": round(self.predicted, 6),
                "wall_seconds": round(time.time() - self.started, 6),
                "collected": self.collected, "selected": self.selected,
                "unplanned": self.unplanned, "results": self.results}

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.is_worker:
            return
        terminalreporter.write_line(
            f"greenlight shard {self.index}/{self.count}: {len(self.selected)} of "
            f"{len(self.collected)} collected tests selected, predicted "
            f"{self.predicted:.2f} s, took {time.time() - self.started:.2f} s"
            + (f", {len(self.unplanned)} {self.unplanned_label}" if self.unplanned else ""))
        if self.reruns and self.reruns["reruns"]:
            terminalreporter.write_line(
                f"greenlight shard {self.index}/{self.count}: failed tests rerun alone: "
                f"{len(self.reruns['flaky'])} flaky (passed alone), "
                f"{len(self.reruns['failed'])} failed again")
            for test_id in self.reruns["flaky"]:
                terminalreporter.write_line(f"  flaky: {test_id}")


def _write_json(path: str, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def rerun_failures(test_ids: list[str], first: dict[str, tuple[str, str]], rootdir: Path,
                   timeout: float = RERUN_TIMEOUT, limit: int = RERUN_LIMIT) -> dict:
    """Rerun each failed test alone (a fresh ``python -m pytest`` in ``rootdir`` with this
    interpreter, i.e. the target's own venv). ``first``: test id -> (outcome, failure text) of
    the first run. Returns the JSON contract of ``greenlight shards rerun-failures``: passed
    (or skipped) alone = flaky, anything else = failed."""
    reruns = []
    for k, test_id in enumerate(test_ids):
        outcome, message = first[test_id]
        if k >= limit:
            reruns.append({"test_id": test_id, "first_outcome": outcome,
                           "rerun_outcome": "not rerun", "verdict": "failed", "seconds": 0.0,
                           "message": f"not rerun: more than {limit} tests failed in this "
                                      f"shard\n{message}"})
            continue
        reruns.append(_rerun_one(test_id, outcome, message, rootdir, timeout))
    flaky = [r["test_id"] for r in reruns if r["verdict"] == "flaky"]
    failed = [r["test_id"] for r in reruns if r["verdict"] != "flaky"]
    return {"flaky": flaky, "failed": failed, "reruns": reruns, "ok": not failed}


def _rerun_one(test_id: str, first_outcome: str, first_message: str, rootdir: Path,
               timeout: float) -> dict:
    # -p no:cacheprovider: no --lf/--ff cache may reorder or skip anything in the rerun. The
    # exit status says it all for one test: 0 passed (or skipped), 1 failed, 5 not found.
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--", test_id]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_XDIST") and k != "PYTEST_CURRENT_TEST"}
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=rootdir, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"test_id": test_id, "first_outcome": first_outcome, "rerun_outcome": "error",
                "verdict": "failed", "seconds": round(time.monotonic() - started, 3),
                "message": f"rerun timed out after {timeout:.0f} s"}
    outcome = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    output = (proc.stdout + proc.stderr)[-2000:]
    # Flaky: the first run's failure is what the ledger keeps; failed again: the rerun's.
    message = first_message if outcome == "passed" else (
        output if outcome == "failed"
        else f"rerun did not execute {test_id} (pytest exit {proc.returncode}): {output}")
    return {"test_id": test_id, "first_outcome": first_outcome, "rerun_outcome": outcome,
            "verdict": "flaky" if outcome == "passed" else "failed",
            "seconds": round(time.monotonic() - started, 3), "message": message}
