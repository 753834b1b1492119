"""scipy's names load on first use: the same answers, and no scipy.stats in a process that only
checks the settings (the master's config, ``greenlight up``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.stats import distributions

from tests.world import write_settings


def test_deferred_names_answer_as_scipy_does():
    import scipy.optimize
    import scipy.stats

    assert distributions.norm.isf(0.025) == scipy.stats.norm.isf(0.025)
    assert distributions.student_t.sf(2.0, 7) == scipy.stats.t.sf(2.0, 7)
    assert distributions.binomtest(3, 10, 0.5).pvalue == scipy.stats.binomtest(3, 10, 0.5).pvalue
    root = distributions.optimize.brentq(lambda x: x * x - 2, 0, 2)
    assert root == scipy.optimize.brentq(lambda x: x * x - 2, 0, 2)
    assert "scipy.stats" in repr(distributions.norm)


def test_missing_name_fails_on_use_with_scipys_error():
    with pytest.raises(AttributeError):
        distributions.Deferred("scipy.stats", "no_such_distribution").cdf(0)


def test_master_config_with_a_judge_does_not_import_scipy_stats(tmp_path: Path):
    settings = write_settings(tmp_path, demo_hosts=2)
    code = ("import sys\n"
            "from greenlight_master.config import build_config\n"
            "from greenlight.settings import load\n"
            "config = build_config(load())\n"
            "assert config['builders'], 'no builders'\n"
            "print('scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "GREENLIGHT_SETTINGS": str(settings)},
                         check=True, timeout=120)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
