"""Fail closed: a step, page or verb that cannot be imported stops the master (or the CLI)
with the import error; nothing is quietly left out of a build, the UI or the help."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

LOAD_MASTER_CFG = textwrap.dedent("""
    import sys
    from buildbot.config.master import FileLoader
    {sabotage}
    config = FileLoader({basedir!r}, {cfg!r}).loadConfig()
    steps = [s.step_class.__name__ for b in config.builders if b.name == "verify"
             for s in b.factory.steps]
    print("verify steps:", " ".join(steps))
""")


def load_master_cfg(tmp_path, sabotage: str = "") -> subprocess.CompletedProcess:
    """Buildbot's own loader on the project's master.cfg, in a fresh interpreter."""
    settings = tmp_path / "greenlight.toml"
    settings.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n\n'
                        "[workers]\ncount = 1\n")
    script = LOAD_MASTER_CFG.format(sabotage=sabotage, basedir=str(tmp_path),
                                    cfg=str(ROOT / "master.cfg"))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"GREENLIGHT_SETTINGS": str(settings), "PATH": "/usr/bin:/bin"},
                          cwd=tmp_path, timeout=120)


def test_master_cfg_loads_with_every_gate(tmp_path):
    proc = load_master_cfg(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SchemaReview" in proc.stdout and "CoverageGate" in proc.stdout


def test_a_renamed_step_class_stops_the_master(tmp_path):
    # What a rename of CoverageGate looks like to master.cfg: the name is gone from its module.
    proc = load_master_cfg(tmp_path, "import greenlight.steps.coverage_gate as m\n"
                                     "m.CoverageGatekeeper = m.CoverageGate\n"
                                     "del m.CoverageGate")
    assert proc.returncode != 0
    assert "cannot import name 'CoverageGate' from 'greenlight.steps.coverage_gate'" \
        in proc.stderr
    assert "verify steps" not in proc.stdout


def test_a_page_that_does_not_import_stops_the_app(monkeypatch):
    from greenlight import settings
    from greenlight.www import dashboard, flaky_page

    monkeypatch.delattr(flaky_page, "blueprint")
    with pytest.raises(AttributeError, match="blueprint"):
        dashboard.make_app(settings.load(None), session_secret=lambda: "x")


def test_every_listed_verb_imports_and_registers():
    from greenlight.cli import main

    parser = main.build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert set(main.VERBS) <= set(verbs)


def test_a_broken_verb_module_is_an_error_not_a_missing_verb(monkeypatch):
    from greenlight.cli import main

    monkeypatch.setitem(main.VERBS, "nothing", "no_such_verb_module")
    with pytest.raises(ModuleNotFoundError, match="greenlight.cli.no_such_verb_module"):
        main.build_parser()
