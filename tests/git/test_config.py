"""A clone's git config as the hooks read it."""
from __future__ import annotations

from greenlight.git import config_flag, config_value, open_repo


def test_values_and_flags_as_git_reads_them(make_repo):
    work = make_repo()
    repo = open_repo(work.path)
    assert config_value(repo, "greenlight.schema.dialect") is None
    assert config_flag(repo, "greenlight.prepush.coverage", False) is False
    assert config_flag(repo, "greenlight.prepush.schema", True) is True
    work.git("config", "greenlight.schema.dialect", "mariadb")
    work.git("config", "greenlight.prepush.coverage", "yes")
    work.git("config", "greenlight.prepush.schema", "off")
    assert config_value(repo, "greenlight.schema.dialect") == "mariadb"
    assert config_flag(repo, "greenlight.prepush.coverage", False) is True
    assert config_flag(repo, "greenlight.prepush.schema", True) is False
