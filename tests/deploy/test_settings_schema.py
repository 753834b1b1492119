"""``[deploy]`` is parsed once, by the deploy engine (DeploySettings.from_section), with
file:line errors; the central loader only hands the table over."""
from __future__ import annotations

import subprocess
import sys

import pytest

from greenlight.deploy.hosts import KEYS, DeploySettings, load_settings
from greenlight.deploy.judge import Judge
from greenlight.errors import SettingsError
from greenlight import settings as central

from .conftest import ROOT_DIR


def check_deploy_settings(settings):
    return DeploySettings.from_section(settings)

JUDGE_DOC_EXAMPLE = """
[deploy]
demo_hosts = 3
observe_seconds = 30
on_window_end = "pass"
health_retries = 7

[deploy.judge]
alpha = 0.02
breakage_share = 0.4

[[deploy.judge.metrics]]
name = "logins per request"
kind = "ratio"
numerator = "demo_logins_total"
denominator = "demo_requests_total"
direction = "lower-is-bad"
min_effect = 0.25

[[deploy.judge.metrics]]
name = "latency"
kind = "latency"
histogram = "demo_request_duration_seconds"
direction = "higher-is-bad"
min_effect = 0.1
"""


def _write(tmp_path, text: str):
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n' + text)
    return path


def test_deploy_keys_have_one_check_and_one_default():
    """The central schema lists no deploy tuning key (only the ledger URL, which the incident
    engine reads too); the typed value's defaults are KEYS' defaults."""
    assert set(central.SCHEMA["deploy"]) == {"*", "ledger_url"}
    engine = DeploySettings(hosts=[])
    for key in ("health_timeout", "health_retries", "health_interval", "restart_timeout",
                "build_timeout", "migrate_timeout", "judge_interval", "final_observe_seconds",
                "on_window_end", "parallel", "canary_fraction", "keep_releases",
                "observe_seconds", "demo_traffic_rate", "demo_traffic_idle_rate"):
        assert KEYS[key].default == getattr(engine, key), key
    deploy = DeploySettings.from_section(central.load())
    assert len(deploy.hosts) == KEYS["demo_hosts"].default and deploy.demo


@pytest.mark.parametrize("text, line, words", [
    ("[deploy]\ndemo_hosts = 3\nhelth_retries = 7\n", 5, "[deploy] helth_retries: unknown"),
    ("[deploy]\n\ncanary_fraction = 2\n", 5, "expected a fraction in (0, 1], got 2"),
    ('[deploy]\n[[deploy.hosts]]\nname = "a"\npath = "/a"\n[[deploy.hosts]]\n'
     'name = "b"\npath = "/b"\nport = "80"\n', 10, "port: expected int"),
    ('[[deploy.hosts]]\nname = "a"\npath = "/a"\nrestrat = []\n', 6, "restrat: unknown"),
    ('[deploy]\nobserve_seconds = 5\n[deploy.judge]\nalpah = 0.01\n', 5, "alpah"),
])
def test_wrong_deploy_settings_name_file_and_line(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    settings = central.load(path)  # the loader hands [deploy] over unchecked
    with pytest.raises(SettingsError) as err:
        DeploySettings.from_section(settings)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert words in str(err.value)


def test_greenlight_deploy_imports_neither_buildbot_nor_the_master(tmp_path):
    """The deploy CLI is an engine's: it must start without Buildbot (a worker or a laptop
    may not have it) and without greenlight_master."""
    path = _write(tmp_path, "[deploy]\ndemo_hosts = 1\n")
    probe = ("import sys; from greenlight.cli.main import main; "
             "code = main(['deploys', 'list', '--settings', sys.argv[1]]); "
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('buildbot', 'greenlight_master', 'twisted', 'flask')); "
             "print('LOADED', bad); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout
    timing = subprocess.run([sys.executable, "-X", "importtime", "-m", "greenlight.cli.main",
                             "deploy", "--help"], cwd=ROOT_DIR, capture_output=True, text=True,
                            timeout=120)
    assert timing.returncode == 0, timing.stderr
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in timing.stderr.splitlines() if line.startswith("import time:")}
    assert "greenlight" in imported
    assert not imported & {"buildbot", "greenlight_master", "twisted"}, imported


def test_documented_judge_tables_load_through_both(tmp_path):
    path = _write(tmp_path, JUDGE_DOC_EXAMPLE)
    settings = central.load(path)
    check_deploy_settings(settings)  # what the master runs at start
    deploy = load_settings(str(path))
    assert len(deploy.hosts) == 3 and deploy.health_retries == 7
    assert deploy.observe_seconds == 30 and deploy.on_window_end == "pass"
    judge = Judge.from_settings(deploy.judge, max_window_s=deploy.observe_seconds,
                                on_timeout=deploy.on_window_end)
    assert [s.name for s in judge.specs] == ["logins per request", "latency"]
    assert judge.alpha == 0.02 and judge.max_window_s == 30 and judge.on_timeout == "pass"
    assert deploy.ledger_url == f"sqlite:///{tmp_path / 'var'}/ledger.sqlite"


def test_section_level_metrics_table_is_the_judges(tmp_path):
    path = _write(tmp_path, """
[deploy]
prometheus_url = "http://127.0.0.1:9090"

[[deploy.metrics]]
name = "errors"
kind = "ratio"
numerator = "demo_errors_total"
denominator = "demo_requests_total"
direction = "higher-is-bad"
min_effect = 1.0
""")
    deploy = load_settings(str(path))
    assert deploy.judge["prometheus_url"] == "http://127.0.0.1:9090"
    assert [s.name for s in Judge.from_settings(deploy.judge).specs] == ["errors"]


@pytest.mark.parametrize("text, words", [
    ('[deploy.judge]\nmax_window_s = 10\n', "observe_seconds"),
    ('[deploy.judge]\non_timeout = "pass"\n', "on_window_end"),
    ('[deploy.judge]\nalpah = 0.01\n', "alpah"),
    ('[deploy]\nprometheus_url = "http://a:1"\n[deploy.judge]\nprometheus_url = "http://b:2"\n',
     "both"),
    ('[[deploy.judge.metrics]]\nname = "x"\nkind = "ratio"\nnumerater = "a"\n', "numerater"),
    ('[[deploy.hosts]]\nname = "bad name;rm"\npath = "/srv"\n', "name"),
])
def test_wrong_deploy_settings_stop_the_master_at_start(tmp_path, text, words):
    settings = central.load(_write(tmp_path, text))
    with pytest.raises(SettingsError) as err:
        check_deploy_settings(settings)
    assert words in str(err.value)


def test_demo_traffic_keys_are_checked(tmp_path):
    with pytest.raises(SettingsError, match="demo_traffic_rate"):
        DeploySettings.from_section(central.load(_write(tmp_path,
                                                        "[deploy]\ndemo_traffic_rate = 5000\n")))
    settings = central.load(_write(tmp_path, "[deploy]\ndemo_traffic_rate = 0\n"))
    assert DeploySettings.from_section(settings).demo_traffic_rate == 0


def test_incident_engine_and_deploy_engine_read_one_ledger(tmp_path):
    import argparse

    from greenlight.cli import incident

    settings = central.load(_write(tmp_path, ""))
    url = f"sqlite:///{tmp_path / 'var'}/ledger.sqlite"
    assert DeploySettings.from_section(settings).ledger_url == url
    assert incident._ledger_url(argparse.Namespace(ledger=None), settings) == url


class _Step:
    """The two things doStepIf reads of a verify build's step."""

    def __init__(self, result: int, branch: str, shards_result: str | None = None):
        self.build = type("Build", (), {"results": result})()
        self._properties = {"branch": branch, "shards_result": shards_result}

    def getProperty(self, name):
        return self._properties.get(name)


@pytest.mark.parametrize("text, result, branch, wanted", [
    ("", 0, "main", True),
    ("", 2, "main", False),          # a red verify build deploys nothing
    ("", 1, "main", False),          # nor a build with warnings
    ("", (1, "warnings"), "main", True),   # ... unless only flaky tests caused them
    ("", (2, "failure"), "main", False),
    ("", 0, "feature", False),       # only the deploy branch deploys
    ("[deploy]\nenabled = false\n", 0, "main", False),
    ("[deploy]\ndemo_hosts = 0\n", 0, "main", False),  # nowhere to deploy to
    ('[repository]\ndeploy_branch = "release"\n', 0, "release", True),
])
def test_green_builds_of_the_deploy_branch_trigger_a_deploy(tmp_path, text, result, branch,
                                                            wanted):
    from greenlight_master.deploy_config import deploy_wanted

    settings = central.load(_write(tmp_path, text))
    result, shards = result if isinstance(result, tuple) else (result, None)
    wanted_now = deploy_wanted(settings, DeploySettings.from_section(settings))
    assert wanted_now(_Step(result, branch, shards)) is wanted


def test_settings_check_reports_deploy_keys_with_file_and_line(tmp_path):
    path = _write(tmp_path, "[deploy]\ndemo_hosts = 2\nhelth_retries = 3\n")
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli.main", "settings", "check",
                           str(path)], cwd=ROOT_DIR, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{path}:5: [deploy] helth_retries: unknown key")
