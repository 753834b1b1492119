"""The story of the demo: a push breaks logins, the judge rolls the canary back, and the incident
report's top suspect is the commit that broke them, with a link to its changed lines."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from greenlight.incidents import build_report, incident_from_request, render_markdown
from tests.incidents.conftest import T0

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
BROKEN = "            if user not in self._users:\n"


@pytest.mark.skipif(not (DEMO / "app" / "logic.py").exists(), reason="demo app not present")
def test_rolled_back_push_names_the_commit_that_broke_logins(world):
    repo = world.repo
    shutil.copytree(DEMO, repo.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".venv", "*.pyc"))
    base = repo.commit("demo shop")
    world.deploy(base, None, T0 - timedelta(days=1))
    logic = repo.path / "app" / "logic.py"
    source = logic.read_text()
    assert BROKEN in source
    logic.write_text(source.replace(BROKEN, "            if user in self._users:\n", 1))
    breaking = repo.commit("simplify login check", author="Bo Broke <bo@x>")
    readme = repo.path / "README.md"
    readme.write_text(readme.read_text() + "\nRun `make test` before pushing.\n")
    docs = repo.commit("docs: mention make test", author="Di Docs <di@x>")
    canary = world.deploy(docs, base, T0 - timedelta(minutes=3), hosts=["web1"],
                          outcome="rolled_back")
    verdict = {"outcome": "fail", "metrics": [
        {"name": "logins", "status": "fail", "relative_change": -1.0, "adjusted_p": 0.001},
        {"name": "errors", "status": "pass", "adjusted_p": 0.7}]}
    world.ledger.record_event(canary, "judge", release=docs,
                              data={"outcome": "fail", "table": "logins -100%",
                                    "verdict": verdict}, at=T0)
    world.deploy(base, docs, T0 + timedelta(minutes=1), kind="rollback", hosts=["web1"])
    world.ledger.record_incident(f"judge failed the canary of {docs[:12]}", deploy_id=canary,
                                 sha=docs, data={"table": "logins -100%", "verdict": verdict},
                                 at=T0 + timedelta(minutes=2))
    incident = incident_from_request(world.ledger.incidents()[0], world.ledger)
    report = build_report(incident, world.ledger, repo.path,
                          {"link_preset": "gitea", "web_url": "http://git.local/demo"})
    top = report.suspects[0]
    assert top.commit.sha == breaking
    assert [s.commit.sha for s in report.suspects[:2]] == [breaking, docs]
    keyword = next(e for e in top.evidence if e.kind == "keyword")
    assert "'login' (failing metric logins)" in keyword.detail
    assert report.live["web1"] == docs
    text = render_markdown(report)
    assert f"http://git.local/demo/blame/commit/{breaking}/app/logic.py#L" in text
    assert "logins -100%" in text
