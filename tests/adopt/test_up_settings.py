"""``up`` against a running master: what changed since it started, and the server hook of a
team's own bare repository (installed, or the command printed when it cannot be)."""
from __future__ import annotations

from greenlight import settings
from greenlight_master import lifecycle

from tests.conftest import git


def _load(tmp_path, text: str = "") -> settings.Settings:
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n{text}')
    return settings.load(path)


def test_changed_settings_name_each_key_and_nothing_when_unchanged(tmp_path):
    basedir = tmp_path / "master"
    basedir.mkdir()
    started = _load(tmp_path, "[verify]\ntimeout = 600\n")
    assert lifecycle.changed_settings(started, basedir) == [
        "no record of the settings it was started with"]
    lifecycle.record_started(started, basedir)
    assert lifecycle.changed_settings(_load(tmp_path, "[verify]\ntimeout = 600\n"),
                                      basedir) == []
    edited = _load(tmp_path, "[verify]\ntimeout = 900\n[workers]\ncount = 3\n")
    assert lifecycle.changed_settings(edited, basedir) == ["[workers] count",
                                                           "[verify] timeout"]


def test_hook_installed_into_a_local_bare_repository_but_never_over_another(tmp_path):
    bare = tmp_path / "team.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    loaded = _load(tmp_path, f'[repository]\nurl = "{bare}"\n')
    report = lifecycle.Report()
    note = lifecycle.ensure_server_hook(loaded, report)
    hook = bare / "hooks" / "post-receive"
    assert note.startswith(f"Server hook installed: {hook}")
    assert "greenlight.push.post_receive" in hook.read_text()
    assert git(bare, "config", "greenlight.url") == loaded.web_url
    assert lifecycle.ensure_server_hook(loaded, report).startswith("Server hook installed")

    hook.write_text("#!/bin/sh\nexec /usr/local/bin/notify-team\n")
    note = lifecycle.ensure_server_hook(loaded, report)
    assert "is not Greenlight's" in note and f"hooks/install server {bare}" in note
    assert hook.read_text() == "#!/bin/sh\nexec /usr/local/bin/notify-team\n"


def test_a_remote_repository_gets_the_command_to_run_on_its_server(tmp_path):
    loaded = _load(tmp_path, '[repository]\nurl = "ssh://git@git.example.com/team/app.git"\n')
    note = lifecycle.ensure_server_hook(loaded, lifecycle.Report())
    assert note.startswith("On the git server, install the hook with:")
    assert "--password-file" in note and "poll_interval" in note


def test_a_changed_database_url_gets_its_tables_before_the_restart(tmp_path):
    basedir = tmp_path / "master"
    first = _load(tmp_path, f'[master]\nbasedir = "{basedir}"\ndb_url = "sqlite:///one.sqlite"\n')
    lifecycle.ensure_master(first, basedir, lifecycle.Report())
    assert (basedir / "one.sqlite").exists()
    second = _load(tmp_path, f'[master]\nbasedir = "{basedir}"\ndb_url = "sqlite:///two.sqlite"\n')
    assert lifecycle.changed_settings(second, basedir)  # no record: a restart is due anyway
    lifecycle.ensure_master(second, basedir, lifecycle.Report())
    assert (basedir / "two.sqlite").exists()


def test_down_and_restart_also_stop_workers_only_the_started_settings_name(tmp_path):
    basedir = tmp_path / "master"
    basedir.mkdir()
    lifecycle.record_started(_load(tmp_path, "[workers]\ncount = 3\n"), basedir)
    edited = _load(tmp_path, "[workers]\ncount = 1\n")
    files = lifecycle.worker_pidfiles(edited, basedir)
    assert sorted(files) == ["local-worker-1", "local-worker-2", "local-worker-3"]
    assert files["local-worker-3"] == tmp_path / "var" / "workers" / "local-worker-3" / "twistd.pid"
