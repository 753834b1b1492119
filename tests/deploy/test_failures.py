"""Failed deploys say why: a release that does not start (its log, local and over ssh), a
deploy killed mid-way (where it stopped), a host that was down before its switch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from greenlight.deploy import demo_hosts as demo
from greenlight.deploy import story
from greenlight.deploy.ledger import Ledger

from .conftest import ROOT_DIR, ScriptedJudge
from .test_ssh import sshd, ssh_host  # noqa: F401 (the fixture)

# A release whose app imports a missing module inside main(): it exits at once.
BROKEN_SERVER = '''\
import sys


def main():
    import no_such_module_x  # noqa: F401
    print("never reached", file=sys.stderr)


main()
'''
CAUSE = "ModuleNotFoundError: No module named 'no_such_module_x'"


def _broken(world) -> str:
    world.commit_app("v2")
    world.repo.write("app/server.py", BROKEN_SERVER)
    return world.repo.commit("v2 imports a module that is not there")


def _assert_start_failure(world, result, v1, v2, canary):
    assert result.outcome == "rolled_back", result.message
    assert result.message.startswith(f"canary {canary} did not start: {CAUSE}"), result.message
    assert "release marked bad" in result.message and "incident request" in result.message
    assert "Traceback (most recent call last)" in result.failure["log_tail"]
    world.assert_consistent(v1, "v1")
    ledger = Ledger(world.ledger_url)
    assert ledger.is_bad(v2)
    [incident] = ledger.incidents()
    assert incident.summary == f"canary {canary} did not start: {CAUSE}"
    assert incident.deploy_id == result.deploy_id and incident.sha == v2
    assert CAUSE in incident.data["trace"] and incident.data["host"] == canary
    record = ledger.deploy(result.deploy_id)
    assert story.verdict_sentence(record) == f"rolled back: canary {canary} did not start: {CAUSE}"
    assert story.start_failure(record)["cause"] == CAUSE
    assert not story.shipped(record)
    # the step shows the failing phase's log: the host's start-up log
    [canary_phase] = [p for p in result.phases if p.name == "canary"]
    assert canary_phase.status == "failed" and CAUSE in canary_phase.log
    return record


def test_release_that_does_not_start_is_explained_rolled_back_and_opens_an_incident(world):
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = _broken(world)
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    _assert_start_failure(world, result, v1, v2, "host01")
    # the tail is this start's output only, not the log of earlier starts
    assert result.failure["log_tail"].count("Traceback") == 1


def test_start_up_log_comes_through_the_ssh_transport(world_factory, sshd):  # noqa: F811
    world = world_factory(2)
    world.settings.hosts = [ssh_host(world.hosts[0], sshd), world.hosts[1]]
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = _broken(world)
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    _assert_start_failure(world, result, v1, v2, "host01")


def _settings_toml(world) -> str:
    lines = [f'[greenlight]\nstate_dir = "{world.tmp / "var"}"\n',
             f'[repository]\nurl = "{world.repo.path}"\n',
             f'[deploy]\nledger_url = "{world.ledger_url}"\nhealth_retries = 40\n'
             'health_interval = 0.05\n']
    for h in world.hosts:
        lines.append(f'[[deploy.hosts]]\nname = "{h.name}"\npath = "{h.path}"\nport = {h.port}\n'
                     f'restart = {json.dumps(list(h.restart))}\nstart_log = "server.log"\n')
    return "\n".join(lines)


def test_killed_deploy_says_where_it_stopped_and_ships_nothing(world_factory):
    world = world_factory(2)
    settings = world.tmp / "greenlight.toml"
    settings.write_text(_settings_toml(world))
    v1 = world.commit_app("v1")
    cli = [sys.executable, "-m", "greenlight.cli.main"]
    first = subprocess.run([*cli, "deploy", v1, "--settings", str(settings), "--json"],
                           cwd=ROOT_DIR, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    v2 = world.commit_app("v2")
    killed = subprocess.run(
        [*cli, "deploy", v2, "--settings", str(settings), "--phase-lines", "--no-judge"],
        cwd=ROOT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, "GREENLIGHT_CRASH_AT": "after-switch:rest:host02"})
    assert killed.returncode == -9, (killed.stdout, killed.stderr)
    progress = [json.loads(line.split(": ", 1)[1]) for line in killed.stdout.splitlines()
                if line.startswith("greenlight-progress: ")]
    # what a step that watched this process shows when it dies
    assert progress[-1]["if_interrupted"] == ("interrupted in phase rest after 1/2 hosts; the "
                                              "next deploy recovers them")
    ledger = Ledger(world.ledger_url)
    [running] = ledger.unfinished_deploys()
    assert story.progress(ledger.deploy(running.id)).interrupted() == \
        progress[-1]["if_interrupted"]
    show = subprocess.run([*cli, "deploys", "show", str(running.id), "--settings",
                           str(settings)], cwd=ROOT_DIR, capture_output=True, text=True,
                          timeout=120)
    assert "interrupted in phase rest after 1/2 hosts" in show.stdout, show.stdout
    # the next deploy recovers the hosts; the interrupted one shipped nothing
    again = subprocess.run([*cli, "deploy", v2, "--settings", str(settings), "--json",
                            "--no-judge"], cwd=ROOT_DIR, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    record = ledger.deploy(running.id)
    assert record.outcome == "interrupted" and not story.shipped(record)
    assert story.verdict_sentence(record).startswith(
        "interrupted in phase rest after 1/2 hosts; interrupted deploy")
    world.assert_consistent(v2, "v2")
    page = _page(settings, f"/deploys/{running.id}")
    assert "interrupted in phase rest after 1/2 hosts" in page
    assert "Commits shipped" not in page and 'class="commits-not-shipped"' in page
    assert "Not shipped: this deploy ended interrupted." in page


def _page(settings_file, path: str) -> str:
    """A Greenlight page as the master serves it (the same Flask app)."""
    from greenlight import settings as settings_mod
    from greenlight.www.dashboard import make_app

    client = make_app(settings_mod.load(settings_file), session_secret=lambda: "s").test_client()
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def test_host_down_before_its_switch_is_recorded_in_deploy_and_rollback(world):
    settings = world.tmp / "greenlight.toml"
    settings.write_text(_settings_toml(world))
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    assert demo.stop_host(world.hosts[2].path)
    v2 = world.commit_app("v2")
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    assert result.outcome == "success", result.message
    assert result.hosts_found_down == ["host03"]
    assert "host03 was down before the switch (started by it)" in result.message
    world.assert_consistent(v2, "v2")
    ledger = Ledger(world.ledger_url)
    assert story.hosts_found_down(ledger.deploy(result.deploy_id)) == [
        {"host": "host03", "phase": "rest", "release": v2}]
    page = _page(settings, f"/deploys/{result.deploy_id}")
    assert "Found down before their switch" in page and "<strong>host03</strong>" in page
    assert "host03 rest (was down)" in page  # its row in the hosts' strip

    assert demo.stop_host(world.hosts[0].path)
    back = world.deployer().rollback(to=v1)
    assert back.outcome == "success" and back.hosts_found_down == ["host01"]
    assert "host01 was down before the switch" in back.message
    world.assert_consistent(v1, "v1")


def test_canary_only_slow_to_answer_stops_the_deploy_without_condemning_the_release(world):
    """No exception in its log and no error answer: a loaded machine, not proof against the
    release — the deploy stops and says why, the release may be deployed again."""
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    world.commit_app("v2")
    world.repo.write("app/server.py", "import time\ntime.sleep(60)\n")
    v2 = world.repo.commit("v2 starts slowly")
    world.settings.health_retries = 10
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    assert result.outcome == "failed", result.message
    assert result.message.startswith("canary host01 did not start: not healthy")
    assert "switched host(s) back on" in result.message
    ledger = Ledger(world.ledger_url)
    assert not ledger.is_bad(v2) and ledger.incidents() == []
    assert story.start_failure(ledger.deploy(result.deploy_id))["cause"] is None
    world.assert_consistent(v1, "v1")
