"""Helpers for coverage tests: run real ``coverage run`` in a test repository."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env


def coverage_run(cwd: Path, *args: str, branch: bool = True) -> None:
    """``coverage run [--branch] ARGS`` in ``cwd`` (the data file lands in cwd/.coverage)."""
    cmd = [sys.executable, "-m", "coverage", "run"]
    if branch:
        cmd.append("--branch")
    subprocess.run([*cmd, *args], cwd=cwd, env=child_env(), check=True, capture_output=True)


@pytest.fixture
def run_coverage():
    return coverage_run
