"""``greenlight experiment`` end to end through the real dispatcher, on a SQLite file."""
from __future__ import annotations

import json

from greenlight.cli.main import main
from greenlight.experiments import ExperimentStore


def _run(capsys, *argv):
    code = main(["experiment", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lifecycle(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("GREENLIGHT_EXPERIMENTS_DB", url)
    code, out, _ = _run(capsys, "define", "DemoSignup", "--branches", "enhanced=0.5",
                        "--user", "ada")
    assert code == 0 and "QA and admins only" in out
    code, out, _ = _run(capsys, "qa", "DemoSignup", "--users", "alice,bob", "--user", "ada")
    assert code == 0 and "2 listed users" in out
    code, out, _ = _run(capsys, "rollout", "DemoSignup", "20", "--user", "bob")
    assert code == 0 and "Rolled out to 20%" in out
    code, out, _ = _run(capsys, "list", "--format", "json")
    listed = json.loads(out)
    assert listed[0]["name"] == "DemoSignup" and listed[0]["updated_by"] == "bob"

    store = ExperimentStore(url)
    store.write_exposures([("DemoSignup", f"u{i}", "enhanced" if i % 2 else "control", 1.0)
                           for i in range(100)])
    store.write_events([(f"u{i}", "login", 1.0, 2.0) for i in range(0, 100, 3)])
    code, out, _ = _run(capsys, "results", "DemoSignup", "--format", "json", "--metric",
                        "login")
    data = json.loads(out)
    assert code == 0 and data["exposed"] == {"control": 50, "enhanced": 50}
    assert data["metrics"][0]["branches"][0]["converting"] == 17
    code, out, _ = _run(capsys, "results", "DemoSignup", "--since", "2100-01-01")
    assert code == 0 and "control 0, enhanced 0" in out

    code, _, err = _run(capsys, "close", "DemoSignup", "--on", "nope")
    assert code == 2 and "no branch 'nope'" in err
    code, out, _ = _run(capsys, "close", "DemoSignup", "--on", "enhanced", "--user", "cy")
    assert code == 0 and "everybody sees enhanced" in out
    code, out, _ = _run(capsys, "show", "DemoSignup")
    assert code == 0 and "cy  close" in out and "bob  rollout" in out
    code, _, err = _run(capsys, "rollout", "DemoSignup", "50")
    assert code == 2 and "closing is final" in err
    code, _, err = _run(capsys, "results", "Missing")
    assert code == 2 and "no experiment named 'Missing'" in err
    code, _, err = _run(capsys, "results", "DemoSignup", "--since", "yesterday-ish")
    assert code == 2 and "--since" in err
    store.dispose()
