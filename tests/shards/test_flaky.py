"""Flaky detection with a test that fails on its first run only, and the flaky ledger."""
from __future__ import annotations

import subprocess
import sys

from greenlight.shards.flaky import FLAKY, REAL_FAILURE, FlakyLedger, verdict_after_rerun
from greenlight.shards.junit import parse_junit_file
from greenlight.shards.rerun import rerun_failures

SUITE = '''
from pathlib import Path

MARKER = Path(__file__).with_name("ran-once")


def test_flaky():
    first = not MARKER.exists()
    MARKER.write_text("x")
    assert not first, "fails on its first run only"


def test_broken():
    assert 1 == 2


def test_fine():
    pass
'''


def _run_suite(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}"], cwd=tmp_path, capture_output=True)
    return junit


def test_verdicts():
    assert verdict_after_rerun("passed") == FLAKY
    assert verdict_after_rerun("failed") == REAL_FAILURE
    assert verdict_after_rerun("error") == REAL_FAILURE


def test_rerun_tells_flaky_from_real(tmp_path):
    junit = _run_suite(tmp_path)
    results = parse_junit_file(junit, rootdir=tmp_path)
    assert sorted(r.test_id for r in results if r.failed) == [
        "test_suite.py::test_broken", "test_suite.py::test_flaky"]
    verdicts = {r.test_id: r.verdict for r in rerun_failures(results, cwd=tmp_path)}
    assert verdicts == {"test_suite.py::test_flaky": FLAKY,
                        "test_suite.py::test_broken": REAL_FAILURE}


def test_ledger_counts_and_orders(db_url):
    ledger = FlakyLedger(db_url)
    ledger.record(["t.py::often"], build="1", commit="aaa", seen_at=100.0)
    ledger.record(["t.py::often", "t.py::once"], build="2", commit="bbb", seen_at=200.0,
                  messages={"t.py::once": "boom"})
    ledger.record(["t.py::often"], build="3", commit="ccc", seen_at=300.0)
    top = ledger.flakiest()
    assert [(e.test_id, e.count) for e in top] == [("t.py::often", 3), ("t.py::once", 1)]
    often = top[0]
    assert (often.first_seen, often.last_seen, often.last_build, often.last_commit) == \
        (100.0, 300.0, "3", "ccc")
    assert often.to_json()["first_seen"] == "1970-01-01T00:01:40Z"
    assert ledger.flakiest(limit=1) == top[:1]
