"""A repository's own git config: where the hooks keep each clone's Greenlight switches (read
here, and written by ``hooks/install``)."""
from __future__ import annotations

from pathlib import Path

import git


def config_value(repo: git.Repo, key: str) -> str | None:
    """``git config --get key`` (every scope git reads: the repository's, the user's, the
    system's), or None when it is not set."""
    try:
        return str(repo.git.config("--get", key)).strip() or None
    except git.GitCommandError:   # exit 1: not set
        return None


def config_flag(repo: git.Repo, key: str, default: bool) -> bool:
    """A boolean setting as git reads booleans (true/yes/on/1), ``default`` when not set."""
    value = config_value(repo, key)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


class NotARepository(Exception):
    """The path is not a git repository (its message is gitpython's: the path)."""


def git_dir(path: Path | str) -> Path:
    """The git directory of the repository at ``path`` (a bare repository is its own)."""
    try:
        return Path(git.Repo(path).git_dir)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError) as exc:
        raise NotARepository(str(exc)) from exc


def write_config(path: Path | str, values: dict[str, dict[str, str]]) -> None:
    """Set ``{section: {option: value}}`` in the repository's own config file, in order."""
    try:
        repo = git.Repo(path)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError) as exc:
        raise NotARepository(str(exc)) from exc
    with repo.config_writer() as cfg:
        for section, options in values.items():
            for option, value in options.items():
                cfg.set_value(section, option, value)
