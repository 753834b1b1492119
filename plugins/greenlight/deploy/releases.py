"""Releases: a clean export of a commit (git archive), installed on hosts, the last K kept.

The export comes from ``git archive`` (via gitpython) so nothing untracked or ignored from a
work tree can leak into production. On a host a release carries an unfinished marker until the
target's build step has run, so a crash mid-install leaves something cleanup recognises.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

import git

from greenlight.deploy.host_agent import SHA_RE
from greenlight.deploy.transport_errors import HostError
from greenlight.errors import UsageError
from greenlight.git import has_commit, is_ancestor, open_repo, resolve_commit
from greenlight.git import releases as git_releases


def deploy_repo(repo_path: str) -> git.Repo:
    """The watched repository named by ``[deploy] repo``; a UsageError says where to fix it."""
    try:
        return open_repo(repo_path, search_parent_directories=False)
    except UsageError:
        raise UsageError(f"{repo_path} is not a git repository; set [deploy] repo in the "
                         "settings to the watched repository") from None


def resolve_release(repo_path: str, rev: str) -> str:
    """Full sha of ``rev`` (a sha or a ref name); UsageError when it is not a commit."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
        raise UsageError(f"not a revision: {rev!r}")
    return resolve_commit(deploy_repo(repo_path), rev, "deploy")


def commits_between(repo_path: str, old: str | None, new: str) -> list[str]:
    """Shas in old..new, newest first (just ``new`` when there is no old release)."""
    return git_releases.commits_between(deploy_repo(repo_path), old, new)


def contains(repo_path: str, live: str, sha: str) -> bool:
    """Whether the ``live`` release already holds ``sha`` (False when the repository lost it)."""
    repo = deploy_repo(repo_path)
    return has_commit(repo, live) and is_ancestor(repo, sha, live)


def export_commit(repo_path: str, sha: str, staging_root: str) -> Path:
    """Export ``sha`` into ``staging_root/<sha>`` (reused when complete)."""
    if not SHA_RE.match(sha):
        raise UsageError(f"not a full commit sha: {sha!r}")
    final = Path(staging_root, sha)
    if final.is_dir():
        return final
    Path(staging_root).mkdir(parents=True, exist_ok=True)
    temp = Path(staging_root, f".{sha}.{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    git_releases.export_tree(deploy_repo(repo_path), sha, temp)
    temp.rename(final)
    return final


def clean_staging(staging_root: str, keep: Iterable[str]) -> None:
    """Drop staged exports other than ``keep`` (they are only a cache)."""
    keep = set(keep)
    root = Path(staging_root)
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def releases_to_prune(releases: list[dict], current: str | None, previous: str | None,
                      keep: int, protect: Iterable[str] = ()) -> list[str]:
    """Finished releases beyond the newest ``keep``; never current, previous or ``protect``.

    ``releases`` are the host agent's ``{"sha", "finished", "mtime"}`` entries.
    """
    finished = sorted((r for r in releases if r["finished"]),
                      key=lambda r: (r["mtime"], r["sha"]), reverse=True)
    kept = {r["sha"] for r in finished[:max(keep, 0)]}
    kept |= {current, previous, *protect}
    return [r["sha"] for r in finished if r["sha"] not in kept]


def install_release(transport, sha: str, staging: Path, build: list[str],
                    build_timeout: float, keep: int) -> bool:
    """Put ``sha`` on one host, finished and ready to switch; False when it already was.

    Order: clean crash leftovers, make room (keep − 1 old ones), begin (marker), copy, build,
    finish. A failure raises HostError and leaves an unfinished release for cleanup.
    """
    st = transport.agent("tidy")
    existing = {r["sha"]: r for r in st["releases"]}
    if sha in existing and existing[sha]["finished"]:
        return False
    doomed = releases_to_prune(st["releases"], st["current"], st["previous"], keep - 1,
                               protect=[sha])
    if doomed:
        transport.agent("remove", *doomed)
    if transport.agent("begin", sha).get("exists"):
        return False
    transport.upload(sha, staging)
    if build:
        result = transport.run(transport.host.expand(build), cwd=f"releases/{sha}",
                               timeout=build_timeout)
        if result["returncode"] != 0:
            raise HostError(transport.host.name, f"build step {build[0]!r} failed in release "
                            f"{sha[:12]} (exit {result['returncode']}): {result['output']}")
    transport.agent("finish", sha)
    return True


def prune_host(transport, keep: int) -> list[str]:
    """Remove crash leftovers and finished releases beyond the newest ``keep``."""
    st = transport.agent("tidy")
    doomed = releases_to_prune(st["releases"], st["current"], st["previous"], keep)
    if doomed:
        transport.agent("remove", *doomed)
    return doomed


def commit_subjects(repo_path: str, shas: Iterable[str]) -> dict[str, str]:
    """Sha -> the first line of its message (see ``greenlight.git.releases``); none when
    ``[deploy] repo`` is not a repository (a page still shows the shas)."""
    try:
        repo = deploy_repo(repo_path)
    except UsageError:
        return {}
    return git_releases.commit_subjects(repo, shas)
