"""Remote workers, the worker port's address and commit statuses, from the settings."""
from __future__ import annotations

import pytest
from buildbot.reporters.github import GitHubStatusPush
from buildbot.reporters.gitlab import GitLabStatusPush
from greenlight import settings
from greenlight.errors import SettingsError

from greenlight_master import config, workers_config


def load(tmp_path, text: str) -> settings.Settings:
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n\n{text}')
    return settings.load(path)


REMOTE = """
[workers]
count = 1

[[workers.remote]]
name = "far-1"
password_file = "{dir}/far-1.secret"
max_builds = 3
properties = {{ site = "lab" }}
"""


def test_remote_workers_join_the_local_ones(tmp_path):
    (tmp_path / "far-1.secret").write_text("pw-far\n")
    loaded = load(tmp_path, REMOTE.format(dir=tmp_path))
    c = config.build_config(loaded)
    by_name = {w.name: w for w in c["workers"]}
    assert set(by_name) == {"local-worker-1", "far-1"}
    far = by_name["far-1"]
    assert far.password == "pw-far" and far.max_builds == 3
    assert far.properties.getProperty("site") == "lab"
    verify = next(b for b in c["builders"] if b.name == "verify")
    assert sorted(verify.workernames) == ["far-1", "local-worker-1"]
    # deploys stay beside the master's state, on the local worker
    assert next(b for b in c["builders"] if b.name == "deploy").workernames == ["local-worker-1"]
    assert c["protocols"]["pb"]["port"].endswith("interface=127.0.0.1")


@pytest.mark.parametrize("entry,message", [
    ('name = "a b"\npassword_file = "x"', "name: expected letters"),
    ('name = "local-worker-1"\npassword_file = "x"', "is used twice"),
    ('name = "far"', "password_file: expected a path"),
    ('name = "far"\npassword_file = "x"\nmax_builds = 0', "max_builds: expected"),
    ('name = "far"\npassword_file = "x"\nport = 1', "unknown key(s) port"),
])
def test_a_wrong_remote_entry_names_file_entry_and_key(tmp_path, entry, message):
    loaded = load(tmp_path, f"[workers]\ncount = 1\n\n[[workers.remote]]\n{entry}\n")
    with pytest.raises(SettingsError) as err:
        workers_config.remote_workers(loaded)
    assert str(err.value).startswith(f"{tmp_path / 'greenlight.toml'}: [[workers.remote]] #1: ")
    assert message in str(err.value)


def test_no_worker_at_all_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="no worker would ever build"):
        workers_config.all_worker_names(load(tmp_path, "[workers]\ncount = 0\n"))


def test_worker_bind_is_loopback_by_default_and_warned_when_exposed(tmp_path):
    assert workers_config.bind_warning(load(tmp_path, "")) is None
    exposed = load(tmp_path, '[master]\nworker_bind = "0.0.0.0"\n')
    assert "listens on 0.0.0.0 without TLS" in workers_config.bind_warning(exposed)
    assert workers_config.pb_port(exposed) == "tcp:9989:interface=0.0.0.0"
    tls = load(tmp_path, '[master]\nworker_bind = "0.0.0.0"\nworker_tls_cert = "/c.pem"\n'
                         'worker_tls_key = "/k.pem"\n')
    assert workers_config.bind_warning(tls) is None
    assert workers_config.pb_port(tls) == \
        "ssl:9989:interface=0.0.0.0:privateKey=/k.pem:certKey=/c.pem"
    half = load(tmp_path, '[master]\nworker_tls_cert = "/c.pem"\n')
    with pytest.raises(SettingsError, match="give both or neither"):
        workers_config.pb_port(half)


@pytest.mark.parametrize("forge,cls", [("github", GitHubStatusPush),
                                       ("gitlab", GitLabStatusPush)])
def test_commit_statuses_are_reported_when_a_token_is_set(tmp_path, forge, cls):
    (tmp_path / "token").write_text("tok-123\n")
    loaded = load(tmp_path, f'[webhooks]\nstatus_forge = "{forge}"\nstatus_token_file = '
                            f'"{tmp_path / "token"}"\nstatus_base_url = "http://127.0.0.1:9"\n')
    [reporter] = config.status_reporters(loaded)
    assert isinstance(reporter, cls)
    assert not config.status_reporters(load(tmp_path, ""))
    missing = load(tmp_path, f'[webhooks]\nstatus_forge = "{forge}"\n')
    with pytest.raises(SettingsError, match="status_token_file: needed"):
        config.status_reporters(missing)
