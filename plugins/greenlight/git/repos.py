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


class BranchUnreadable(Exception):
    """The path is not a repository on this machine, or has no such branch."""


def files_at_branch(path: Path | str, branch: str, names: list[str]) -> dict[str, str]:
    """The text of each of ``names`` at ``refs/heads/<branch>`` of the repository at ``path``,
    leaving out the names the branch does not have; BranchUnreadable when ``path`` is not a
    repository here or has no such branch."""
    try:
        repo = git.Repo(path)
        files = {}
        for name in names:
            try:
                files[name] = repo.git.show(f"refs/heads/{branch}:{name}")
            except git.GitCommandError:
                continue  # not in the project
        repo.commit(f"refs/heads/{branch}")
    except (git.NoSuchPathError, git.InvalidGitRepositoryError, git.BadName, ValueError) as exc:
        raise BranchUnreadable(str(exc)) from exc
    return files


def remote_branch_sha(url: str, branch: str) -> str | None:
    """The sha at ``refs/heads/<branch>`` of the repository at ``url`` (``git ls-remote``), or
    None when it has no such branch."""
    out = git.cmd.Git().ls_remote("--", url, f"refs/heads/{branch}")
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None
