"""`greenlight incident` from where users run it: the project directory, a mirror, a typo."""
from __future__ import annotations

import json
import shutil
from datetime import timedelta

from greenlight.cli.main import main
from tests.conftest import git
from tests.incidents.conftest import T0, logic_source, trace_for


def _seed(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(days=3))
    repo.write("app/logic.py", logic_source({6: "value_6 = 6 / 0"}))
    bad = repo.commit("divide", author="Bob <bob@x>")
    world.deploy(bad, base, T0 - timedelta(hours=1))
    return base, bad


def _settings_file(tmp_path, repo_url: str, ledger_url: str):
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[repository]\nurl = "{repo_url}"\n\n[deploy]\nledger_url = "{ledger_url}"\n'
                    f'\n[incidents]\nhorizon = "30d"\n')
    return path


def test_every_verb_defaults_to_the_watched_repository_not_the_cwd(world, tmp_path, capsys,
                                                                    monkeypatch):
    _, bad = _seed(world)
    settings = _settings_file(tmp_path, str(world.repo.path), world.ledger.url)
    monkeypatch.setenv("GREENLIGHT_SETTINGS", str(settings))
    elsewhere = tmp_path / "project-checkout"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q")               # a git repository, but not the deployed one
    monkeypatch.chdir(elsewhere)
    trace = tmp_path / "trace.txt"
    trace.write_text(trace_for(("app/logic.py", 6, "f")))
    assert main(["incident", "report", "--at", "2026-05-01T12:00:00Z", "--trace", str(trace),
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["suspects"][0]["sha"] == bad
    assert data["horizon_start"] == "2026-04-01T12:00:00Z"      # [incidents] horizon = 30d
    assert main(["incident", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert bad[:12] in shown and "is not in the repository" not in shown


def test_a_missing_ledger_is_an_error_not_an_empty_report(world, tmp_path, capsys):
    _seed(world)
    missing = tmp_path / "nowhere" / "ledger.sqlite"
    code = main(["incident", "report", "--at", "2026-05-01T12:00:00Z", "--repo",
                 str(world.repo.path), "--ledger", f"sqlite:///{missing}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"no deploy ledger at {missing}" in err and "greenlight deploys import" in err
    assert not missing.exists() and not missing.parent.exists()


def test_a_time_in_the_far_future_is_refused(world, capsys):
    _seed(world)
    code = main(["incident", "report", "--at", "2062-05-01T12:00:00Z", "--repo",
                 str(world.repo.path), "--ledger", world.ledger.url])
    assert code == 2
    assert "--at: the incident starts at 2062-05-01T12:00:00Z, after now" in \
        capsys.readouterr().err


def test_a_bare_mirror_without_a_config_file_works(world, tmp_path, capsys):
    _, bad = _seed(world)
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(world.repo.path), str(mirror))
    (mirror / "config").unlink()
    shutil.rmtree(mirror / "hooks", ignore_errors=True)
    trace = tmp_path / "trace.txt"
    trace.write_text(trace_for(("app/logic.py", 6, "f")))
    code = main(["incident", "report", "--at", "2026-05-01T12:00:00Z", "--trace", str(trace),
                 "--repo", str(mirror), "--ledger", world.ledger.url, "--format", "json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["suspects"][0]["sha"] == bad


def test_a_directory_that_is_not_a_repository_says_so(world, tmp_path, capsys):
    _seed(world)
    code = main(["incident", "report", "--at", "2026-05-01T12:00:00Z", "--repo",
                 str(tmp_path / "empty"), "--ledger", world.ledger.url])
    assert code == 2
    assert "not a git repository" in capsys.readouterr().err
