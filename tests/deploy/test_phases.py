"""Deploys on real local hosts: phases, judge outcomes, failing hosts, migrations, keep-K."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from greenlight.deploy.hosts import Host
from greenlight.deploy.ledger import Ledger
from greenlight.errors import UsageError

from .conftest import PYTHON, ScriptedJudge


def test_first_deploy_then_canary_then_rest(world):
    v1 = world.commit_app("v1")
    first = world.deployer().deploy(v1, trigger="test")
    assert first.outcome == "success", first.message
    assert [p.name for p in first.phases] == ["prepare", "migrate", "rest", "observe"]
    world.assert_consistent(v1, "v1")

    v2 = world.commit_app("v2")
    judge = ScriptedJudge("pending", "pending", "pass")
    result = world.deployer(judge).deploy(v2, trigger="test")
    assert result.outcome == "success", result.message
    assert [p.name for p in result.phases] == ["prepare", "migrate", "canary", "judge",
                                               "rest", "observe"]
    # ceil(5% of 3) = 1 canary judged against the 2 hosts still on v1, three scrapes
    assert judge.calls == [(["host01"], ["host02", "host03"])] * 3
    world.assert_consistent(v2, "v2")

    ledger = Ledger(world.ledger_url)
    record = ledger.deploy(result.deploy_id)
    assert (record.sha, record.previous_sha, record.outcome) == (v2, v1, "success")
    assert record.commits == [v2] and record.trigger == "test"
    assert [e.host for e in record.events if e.phase == "up"][0] == "host01"
    assert [e.data["outcome"] for e in record.events if e.phase == "judge"] == \
        ["pending", "pending", "pass"]
    assert ledger.live_at(record.finished_at) == {h.name: v2 for h in world.hosts}
    assert ledger.live_at(record.started_at) == {h.name: v1 for h in world.hosts}
    # the same sha again is a no-op; an older one is superseded by the live one
    assert world.deployer().deploy(v2).outcome == "noop"
    assert world.deployer().deploy(v1).outcome == "superseded"


def test_judge_fail_rolls_canary_back_marks_bad_and_opens_incident(world):
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2 breaks logins")
    result = world.deployer(ScriptedJudge("pending", "fail")).deploy(v2)
    assert result.outcome == "rolled_back"
    assert [p.name for p in result.phases][-2:] == ["judge", "rollback"]
    world.assert_consistent(v1, "v1")
    ledger = Ledger(world.ledger_url)
    assert ledger.is_bad(v2)
    [incident] = ledger.incidents()
    assert incident.deploy_id == result.deploy_id and incident.sha == v2
    assert incident.data["canary"] == ["host01"] and "scripted fail" in incident.data["table"]
    assert ledger.deploy(result.deploy_id).outcome == "rolled_back"
    with pytest.raises(UsageError, match="marked bad"):
        world.deployer().deploy(v2)
    # the fix rolls forward
    v3 = world.commit_app("v3 fixed")
    assert world.deployer(ScriptedJudge("pass")).deploy(v3).outcome == "success"
    world.assert_consistent(v3, "v3 fixed")
    # an automatic rollback target is never the bad release
    back = world.deployer().rollback()
    assert back.outcome == "success" and back.sha == v1
    world.assert_consistent(v1, "v1")


def test_window_end_undecided_fails_safe(world):
    world.settings.observe_seconds = 0.05
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2")
    result = world.deployer(ScriptedJudge("pending")).deploy(v2)
    assert result.outcome == "rolled_back"
    assert "ended undecided" in result.phases[-2].log
    world.assert_consistent(v1, "v1")


def test_unhealthy_canary_stops_and_rolls_back(world):
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    world.settings.health_retries = 60  # time to start and answer 500, even under load
    v2 = world.commit_app("v2", unhealthy=True)
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    # a canary that cannot come up on the release condemns the release, as a judge would
    assert result.outcome == "rolled_back"
    assert result.message.startswith("canary host01 did not start: not healthy")
    assert [p.name for p in result.phases][-2:] == ["canary", "rollback"]
    world.assert_consistent(v1, "v1")
    ledger = Ledger(world.ledger_url)
    assert ledger.deploy(result.deploy_id).outcome == "rolled_back" and ledger.is_bad(v2)


def test_restart_failing_in_rest_phase_rolls_back_every_switched_host(world_factory):
    world = world_factory(4)
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    v2 = world.commit_app("v2")
    marker = world.tmp / "break-host04"
    broken = replace(world.hosts[3], restart=(
        PYTHON, "-c", f"import os, sys, runpy; sys.argv = ['x', 'restart', {world.hosts[3].path!r},"
        f" '--port', '{world.hosts[3].port}']; os.path.exists({str(marker)!r}) and sys.exit(3);"
        " runpy.run_module('greenlight.deploy.demo_hosts', run_name='__main__')"))
    world.settings.hosts = world.hosts[:3] + [broken]
    marker.write_text("x")
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    # one host failing after the canary started the release: that host, not the release
    assert result.outcome == "failed"
    assert result.message.startswith("rest host04 did not start: restart command failed "
                                     "(exit 3)"), result.message
    world.assert_consistent(v1, "v1")
    marker.unlink()
    assert world.deployer(ScriptedJudge("pass")).deploy(v2).outcome == "success"
    world.assert_consistent(v2, "v2")


def test_unreachable_host_aborts_before_any_switch(world):
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    from .conftest import free_ports
    ghost = Host(name="ghost", transport="ssh", path="/srv/app", port=1,
                 address="127.0.0.1", ssh_port=free_ports(1)[0],
                 strict_host_key_checking="yes")
    world.settings.hosts = world.hosts + [ghost]
    v2 = world.commit_app("v2")
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    assert result.outcome == "failed"
    assert "host ghost" in result.message and "no host was switched" in result.message
    world.settings.hosts = world.hosts
    world.assert_consistent(v1, "v1")


def test_migrate_runs_once_before_switch_and_its_failure_moves_nothing(world):
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    log = world.tmp / "migrations.log"
    script = ("import os, sys; open(sys.argv[1], 'a').write(os.environ['GREENLIGHT_SHA'] + "
              "' ' + open('VERSION').read()); sys.exit(1 if os.path.exists('FAIL') else 0)")
    world.settings.migrate = (PYTHON, "-c", script, str(log))
    v2 = world.commit_app("v2", extra={"FAIL": "1"})
    result = world.deployer(ScriptedJudge("pass")).deploy(v2)
    assert result.outcome == "failed" and "migrate command failed" in result.message
    world.assert_consistent(v1, "v1")
    os.unlink(world.repo.path / "FAIL")
    v3 = world.commit_app("v3")
    result = world.deployer(ScriptedJudge("pass")).deploy(v3)
    assert result.outcome == "success", result.message
    assert log.read_text().splitlines() == [f"{v2} v2", f"{v3} v3"]


def test_keep_k_releases_and_crash_leftovers_removed(world_factory):
    world = world_factory(2)
    world.settings.keep_releases = 3
    shas = [world.commit_app(f"v{i}") for i in range(1, 6)]
    for sha in shas:
        assert world.deployer(ScriptedJudge("pass")).deploy(sha).ok
    host = Path(world.hosts[0].path)
    # a crashed install and a half-deleted release from an earlier run
    (host / "releases" / ("f" * 40)).mkdir()
    (host / "releases" / ("f" * 40) / ".greenlight-unfinished").write_text("")
    (host / "releases" / ".trash-abc").mkdir()
    back = world.deployer().rollback(to=shas[1])  # an old release becomes current
    assert back.outcome == "success"
    v6 = world.commit_app("v6")
    assert world.deployer(ScriptedJudge("pass")).deploy(v6).ok
    for h in world.hosts:
        names = sorted(p.name for p in Path(h.path, "releases").iterdir())
        # the newest 3 by install time: v6, shas[1] (re-installed by the rollback), shas[4]
        assert names == sorted({v6, shas[1], shas[4]}), names
        assert Path(h.path, "previous").readlink().name == shas[1]


def test_bad_names_rejected_before_any_command(world):
    from greenlight.deploy.hosts import host_from_table
    from greenlight.errors import SettingsError
    with pytest.raises(SettingsError, match="name"):
        host_from_table({"name": "web1;rm -rf /", "path": "/x"}, lambda key: "f:1")
    with pytest.raises(SettingsError, match="address"):
        host_from_table({"name": "w", "path": "/x", "transport": "ssh",
                         "address": "-oProxyCommand=evil"}, lambda key: "f:1")
    world.commit_app("v1")
    with pytest.raises(UsageError, match="not a revision"):
        world.deployer().deploy("--upload-pack=touch /tmp/x")
    with pytest.raises(UsageError, match="unknown deploy revision"):
        world.deployer().deploy("main;id")


def test_no_shell_in_the_deploy_engine():
    root = Path(__file__).resolve().parents[2] / "plugins" / "greenlight" / "deploy"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "shell=True" not in text and "os.system(" not in text, path


def test_releases_to_prune_never_takes_current_or_previous():
    from greenlight.deploy.releases import releases_to_prune
    rels = [{"sha": c * 40, "finished": True, "mtime": t} for c, t in zip("abcdef", range(6))]
    rels.append({"sha": "9" * 40, "finished": False, "mtime": 99})
    # a, b oldest but current and previous; keep the newest 2 (f, e)
    assert releases_to_prune(rels, "a" * 40, "b" * 40, 2) == ["d" * 40, "c" * 40]
    assert releases_to_prune(rels, "f" * 40, "e" * 40, 5) == ["a" * 40]
    assert releases_to_prune(rels, None, None, 1, protect=["c" * 40]) == \
        ["e" * 40, "d" * 40, "b" * 40, "a" * 40]


def test_fresh_baseline_is_restarted_on_the_previous_release(world_factory):
    from greenlight.deploy import demo_hosts as demo
    world = world_factory(4)
    world.settings.canary_fraction = 0.25
    world.settings.judge = {"baseline": "fresh"}
    v1 = world.commit_app("v1")
    assert world.deployer().deploy(v1).ok
    pids = {h.name: demo.read_pid(h.path) for h in world.hosts}
    v2 = world.commit_app("v2")
    judge = ScriptedJudge("fail")
    result = world.deployer(judge).deploy(v2)
    assert result.outcome == "rolled_back"
    assert judge.calls == [(["host01"], ["host02"])]
    assert [p.name for p in result.phases][2:4] == ["baseline", "canary"]
    after = {h.name: demo.read_pid(h.path) for h in world.hosts}
    assert after["host02"] != pids["host02"]  # restarted, still on v1
    assert after["host03"] == pids["host03"] and after["host04"] == pids["host04"]
    world.assert_consistent(v1, "v1")
