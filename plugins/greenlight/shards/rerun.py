"""Rerun each failed test alone with pytest to tell flaky tests from real failures.

"Alone" matters: a test that only fails next to others (shared state, ordering, load) is what
the team needs to hear about as flaky, and a test that fails by itself too is a real failure.
This is the only module of the sharding engine that starts processes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from greenlight.errors import UsageError
from greenlight.shards.flaky import REAL_FAILURE, verdict_after_rerun
from greenlight.shards.junit import ERROR, TestResult, parse_junit_file

DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Rerun:
    """What happened to one failed test when it ran again alone."""

    test_id: str
    first_outcome: str
    rerun_outcome: str
    verdict: str  # flaky | failed
    seconds: float
    message: str = ""

    def to_json(self) -> dict:
        return {"test_id": self.test_id, "first_outcome": self.first_outcome,
                "rerun_outcome": self.rerun_outcome, "verdict": self.verdict,
                "seconds": round(self.seconds, 3), "message": self.message[:2000]}


def rerun_failures(results: Sequence[TestResult], cwd: str | Path = ".",
                   python: str | None = None, extra_args: Sequence[str] = (),
                   timeout: float = DEFAULT_TIMEOUT) -> list[Rerun]:
    """Rerun every failed/errored result alone, in ``cwd``; one pytest process per test."""
    return [rerun_one(r, cwd, python, extra_args, timeout) for r in results if r.failed]


def rerun_one(result: TestResult, cwd: str | Path = ".", python: str | None = None,
              extra_args: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT) -> Rerun:
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise UsageError(f"--cwd {cwd}: not a directory; pass the folder pytest ran in")
    with tempfile.TemporaryDirectory(prefix="greenlight-rerun-") as tmp:
        junit = Path(tmp) / "rerun.xml"
        # -p no:cacheprovider: a rerun must not reorder or skip anything via --lf caches.
        argv = [python or sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--junitxml={junit}", *extra_args, "--", result.test_id]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return Rerun(result.test_id, result.outcome, ERROR, REAL_FAILURE,
                         time.monotonic() - started, f"rerun timed out after {timeout:.0f} s")
        elapsed = time.monotonic() - started
        rerun_results = parse_junit_file(junit, rootdir=cwd) if junit.exists() else []
        mine = [r for r in rerun_results if r.test_id == result.test_id]
        if len(mine) == 1:
            outcome, message = mine[0].outcome, mine[0].message
        else:
            # Not found (renamed, collection error): the rerun proves nothing, so it's real.
            outcome = ERROR
            message = (f"rerun did not execute {result.test_id} (pytest exit "
                       f"{proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}")
    return Rerun(result.test_id, result.outcome, outcome, verdict_after_rerun(outcome), elapsed,
                 message or result.message)
