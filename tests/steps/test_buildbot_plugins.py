"""Greenlight's steps as Buildbot plugins: a team's own master.cfg, which knows nothing of
Greenlight's settings, uses them through ``buildbot.plugins`` and passes ``buildbot
checkconfig``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent

THEIR_MASTER_CFG = """
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {}
c["buildbotNetUsageData"] = None
c["workers"] = [worker.Worker("their-worker", "pass")]
c["protocols"] = {"pb": {"port": "tcp:0:interface=127.0.0.1"}}
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["ci"])]
f = util.BuildFactory()
f.addStep(steps.Git(repourl="https://example.invalid/their/app.git", mode="full"))
f.addStep(steps.ResolveBase(green_file="/var/lib/ci/green.json"))
f.addStep(steps.SchemaReview(migrations_dir="db/migrations", dialect="postgres"))
tests = util.GatedTests(["python", "-m", "coverage", "run", "-m", "pytest"], fail_under=80)
f.addStep(steps.GreenlightTests(command=tests, junit_file="junit.xml"))
f.addStep(steps.CoverageGate(fail_under=80, tests_report=tests.output))
f.addStep(steps.RecordGreen(green_file="/var/lib/ci/green.json"))
c["builders"] = [util.BuilderConfig(name="ci", workernames=["their-worker"], factory=f)]
c["www"] = {"port": 0, "change_hook_dialects": {"greenlight": {}}}
c["db"] = {"db_url": "sqlite:///state.sqlite"}
"""


def test_their_master_cfg_with_greenlight_steps_passes_checkconfig(tmp_path):
    (tmp_path / "master.cfg").write_text(THEIR_MASTER_CFG)
    proc = subprocess.run([str(BIN / "buildbot"), "checkconfig", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Config file is good!" in proc.stdout


def test_a_misspelt_plugin_is_named_by_checkconfig(tmp_path):
    (tmp_path / "master.cfg").write_text(THEIR_MASTER_CFG.replace("steps.CoverageGate(",
                                                                  "steps.CoverageGates("))
    proc = subprocess.run([str(BIN / "buildbot"), "checkconfig", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode != 0 and "CoverageGates" in proc.stdout + proc.stderr


def test_every_entry_point_names_a_class_that_exists():
    from importlib.metadata import entry_points

    names = {e.name: e for e in entry_points(group="buildbot.steps")
             if e.value.startswith("greenlight.")}
    assert {"CoverageGate", "SchemaReview", "GreenlightDeploy", "PlanShards"} <= set(names)
    for entry in names.values():
        assert isinstance(entry.load(), type), entry
    declared = (ROOT / "pyproject.toml").read_text()
    assert all(f'{name} = "{e.value}"' in declared for name, e in names.items())
