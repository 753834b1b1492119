"""Helpers for coverage tests: run real ``coverage run`` in a test repository."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def clean_env(**extra: str) -> dict:
    """The environment without any coverage/pytest settings of the outer test run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COVERAGE_", "PYTEST_", "COV_CORE"))}
    env.update(extra)
    return env


def coverage_run(cwd: Path, *args: str, branch: bool = True) -> None:
    """``coverage run [--branch] ARGS`` in ``cwd`` (the data file lands in cwd/.coverage)."""
    cmd = [sys.executable, "-m", "coverage", "run"]
    if branch:
        cmd.append("--branch")
    subprocess.run([*cmd, *args], cwd=cwd, env=clean_env(), check=True, capture_output=True)


@pytest.fixture
def run_coverage():
    return coverage_run
