"""Files as a commit holds them, and where a repository's work tree is."""
from __future__ import annotations

from pathlib import Path

import git


def file_at(repo: git.Repo, commit: str, path: str) -> bytes:
    """The bytes of ``path`` at ``commit`` (what is pushed, not the work tree); KeyError when
    the commit has no such file."""
    return (repo.commit(commit).tree / path).data_stream.read()


def work_tree(repo: git.Repo) -> Path:
    """The top folder of the repository's work tree."""
    return Path(repo.working_dir)
