"""`greenlight settings check` lists every problem with file:line; later verbs read the settings
the master was started with."""
from __future__ import annotations

import json
import subprocess

import pytest

from greenlight import settings
from greenlight.errors import SettingsError
from tests.conftest import ROOT

GREENLIGHT = str(ROOT / ".venv" / "bin" / "greenlight")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([GREENLIGHT, *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_check_prints_every_problem_in_file_order_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[master]\nweb_port = 0\n\n[workers]\ncount = "x"\nbogus = 1\n[verfy]\n')
    proc = run("settings", "check", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines == [
        f"{bad}:2: [master] web_port: expected a TCP port number 1-65535, got 0",
        f"{bad}:5: [workers] count: expected a whole number >= 0 (0: remote workers only), "
        "got 'x'",
        f"{bad}:6: [workers] bogus: unknown key; expected one of "
        + ", ".join(settings.SCHEMA["workers"]),
        f"{bad}:7: [verfy]: unknown section; expected one of " + ", ".join(settings.SCHEMA),
        f"4 problem(s) in {bad}",
    ]
    assert "Traceback" not in proc.stderr


def test_check_of_a_good_file_prints_the_resolved_settings(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("[workers]\ncount = 3\n")
    proc = run("settings", "check", str(good))
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)
    assert resolved["source"] == str(good)
    assert resolved["settings"]["workers"]["count"] == 3
    assert resolved["settings"]["master"]["web_port"] == 8010   # a default filled in


def test_check_of_unreadable_or_invalid_toml_says_so(tmp_path):
    proc = run("settings", "check", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "cannot read settings file" in proc.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[master\n")
    proc = run("settings", "check", str(broken))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_validate_raises_one_error_listing_all_problems():
    with pytest.raises(SettingsError) as err:
        settings.validate({"workers": {"count": -1}, "master": {"web_port": "x"}})
    assert len(str(err.value).splitlines()) == 2


def test_verbs_read_the_file_the_master_was_started_with(tmp_path, monkeypatch):
    pointer = tmp_path / "active-settings"
    monkeypatch.setattr(settings, "ACTIVE_POINTER", pointer)
    monkeypatch.delenv("GREENLIGHT_SETTINGS", raising=False)
    mine = tmp_path / "mine.toml"
    mine.write_text("[workers]\ncount = 5\n")
    assert settings.load()["workers"]["count"] == 2          # nothing recorded: defaults
    settings.remember_active(mine)
    assert settings.load()["workers"]["count"] == 5
    assert settings.load().source == str(mine.resolve())
    other = tmp_path / "other.toml"
    other.write_text("[workers]\ncount = 7\n")
    monkeypatch.setenv("GREENLIGHT_SETTINGS", str(other))      # the shell's choice wins
    assert settings.load()["workers"]["count"] == 7
    monkeypatch.delenv("GREENLIGHT_SETTINGS")
    mine.unlink()                                              # a vanished file is not used
    assert settings.load()["workers"]["count"] == 2
    settings.remember_active(other)
    settings.forget_active()
    assert not pointer.exists()
