"""Creating repositories: the demo's bare repository and its first commit."""
from __future__ import annotations

from pathlib import Path

import git


def create_bare_repo(path: Path | str, initial_branch: str) -> None:
    """``git init --bare --initial-branch=…`` at ``path``."""
    git.Repo.init(path, bare=True, initial_branch=initial_branch)


def commit_all_and_push(work: Path | str, remote: Path | str, branch: str, message: str,
                        author_name: str, author_email: str) -> None:
    """Make ``work`` (a folder of files) a repository on ``branch`` whose one commit, by the
    given author (written to its own config), holds every file, and push it to ``remote``'s
    ``branch``."""
    repo = git.Repo.init(work, initial_branch=branch)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", author_name)
        cfg.set_value("user", "email", author_email)
    repo.git.add("-A")
    repo.index.commit(message)
    repo.git.push(str(remote), f"HEAD:refs/heads/{branch}")
