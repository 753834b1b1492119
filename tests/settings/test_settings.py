"""The settings file: defaults need no file; a wrong key fails naming file, line and key."""
from __future__ import annotations

import subprocess

import pytest

from greenlight.errors import SettingsError
from greenlight import settings
from tests.conftest import ROOT, scaled


def write(tmp_path, text):
    path = tmp_path / "greenlight.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    loaded = settings.load(None)
    assert loaded["workers"]["count"] == 2
    assert loaded["repository"]["branches"] == ["main"]
    assert loaded["master"]["web_port"] == 8010


def test_wrong_type_names_file_line_key_and_expectation(tmp_path):
    path = write(tmp_path, "[master]\nweb_port = 8010\n\n[workers]\ncount = \"two\"\n")
    with pytest.raises(SettingsError) as err:
        settings.load(path)
    assert str(err.value) == (f"{path}:5: [workers] count: expected a whole number >= 0 "
                              "(0: remote workers only), "
                              "got 'two'")


def test_unknown_key_and_section(tmp_path):
    with pytest.raises(SettingsError, match=r":2: \[verify\] test_cmd: unknown key"):
        settings.load(write(tmp_path, "[verify]\ntest_cmd = ['pytest']\n"))
    with pytest.raises(SettingsError, match=r"\[verfy\]: unknown section"):
        settings.load(write(tmp_path, "[verfy]\n"))


def test_invalid_toml_and_bad_branch(tmp_path):
    with pytest.raises(SettingsError, match="not valid TOML"):
        settings.load(write(tmp_path, "[master\n"))
    with pytest.raises(SettingsError, match="not a valid branch name"):
        settings.load(write(tmp_path, "[repository]\nbranches = ['a b']\n"))
    with pytest.raises(SettingsError, match="cannot read settings file"):
        settings.load(tmp_path / "missing.toml")


def test_master_start_with_bad_settings_fails_with_the_message(tmp_path):
    path = write(tmp_path, "[master]\nweb_port = 0\n")
    proc = subprocess.run([str(ROOT / ".venv/bin/greenlight"), "up", "--settings", str(path)],
                          capture_output=True, text=True, timeout=scaled(60))
    assert proc.returncode == 2
    assert "[master] web_port: expected a TCP port number 1-65535, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unknown_verb_and_bad_args_exit_2_without_traceback():
    for args in (["bogus"], ["up", "--nope"], []):
        proc = subprocess.run([str(ROOT / ".venv/bin/greenlight"), *args], capture_output=True,
                              text=True, timeout=scaled(60))
        assert proc.returncode == 2, args
        assert "usage:" in proc.stderr and "Traceback" not in proc.stderr
