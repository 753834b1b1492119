"""What a release needs from git: its files, the commits it brings and what they say.

A release is exported with ``git archive`` (via gitpython), never copied from a work tree, so
nothing untracked or ignored can leak into production.
"""
from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

import git

from greenlight.git.ranges import has_commit


def export_tree(repo: git.Repo, sha: str, dest: Path) -> None:
    """Write the files of commit ``sha`` into ``dest`` (created; tar's "data" filter refuses
    absolute paths, links out of ``dest`` and device files)."""
    buffer = io.BytesIO()
    repo.archive(buffer, treeish=sha, format="tar")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as tar:
        tar.extractall(dest, filter="data")


def commits_between(repo: git.Repo, old: str | None, new: str) -> list[str]:
    """Shas in old..new, newest first; just ``new`` when there is no old release or this
    repository no longer holds it (a rewritten history)."""
    if not old or not has_commit(repo, old):
        return [new]
    return [c.hexsha for c in repo.iter_commits(f"{old}..{new}")]


def commit_subjects(repo: git.Repo, shas: Iterable[str]) -> dict[str, str]:
    """Sha -> the first line of its message, for the shas the repository has (a page names
    commits by what they say; a sha the repository lost is left out)."""
    return {sha: repo.commit(sha).summary for sha in shas if has_commit(repo, sha)}
