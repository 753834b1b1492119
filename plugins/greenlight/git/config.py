"""A repository's own git config: where the hooks keep each clone's Greenlight switches."""
from __future__ import annotations

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
