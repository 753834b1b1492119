"""On the demo app: three shards (our plugin) under coverage combine to exactly the serial
run's coverage, and every test runs exactly once."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.shards.collect import judge_shards

from tests.conftest import child_env

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=child_env(), capture_output=True,
                          text=True, timeout=300)


def _measured(cwd: Path) -> dict:
    """Executed lines and branches per file, after combining every data file in ``cwd``."""
    _run(cwd, "-m", "coverage", "combine", "-q")
    _run(cwd, "-m", "coverage", "json", "-q", "-o", "cov.json")
    files = json.loads((cwd / "cov.json").read_text())["files"]
    for data in cwd.glob(".coverage*"):
        data.unlink()
    return {name: (sorted(f["executed_lines"]), sorted(map(tuple, f["executed_branches"])))
            for name, f in files.items()}


@pytest.mark.skipif(not (DEMO / "pyproject.toml").exists(), reason="demo app not present")
def test_three_shards_combine_to_the_serial_coverage(tmp_path):
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo, ignore=shutil.ignore_patterns(".coverage*", "__pycache__"))
    serial = _run(demo, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert serial.returncode == 0, serial.stdout + serial.stderr
    serial_coverage = _measured(demo)
    assert serial_coverage, "the serial run measured nothing"

    reports = []
    for i in (1, 2, 3):
        shard = _run(demo, "-m", "coverage", "run", "-m", "pytest", "-q", "-p",
                     "no:cacheprovider", f"--shard={i}/3", f"--shard-report=s{i}.json")
        assert shard.returncode in (0, 5), shard.stdout + shard.stderr
        reports.append(json.loads((demo / f"s{i}.json").read_text()))
    verdict = judge_shards(reports)
    assert verdict.union.ok and verdict.result == "success", verdict.render_text()
    assert all(r["selected"] for r in reports), "a shard got no tests: the split is degenerate"
    assert _measured(demo) == serial_coverage
