"""Who introduced each uncovered line, and in which commit (git blame at head, asked through
``greenlight.git.blame``).

Blame is limited to the pushed range (``base..head``) and to the uncovered lines, so its cost
follows the number of problems, not the size of the diff; a range of one commit needs no blame.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from greenlight.coverage.changed_lines import open_repo
from greenlight.coverage.report import Origin
from greenlight.git import PushRange
from greenlight.git.blame import (
    blame_lines_in_range,
    commit_authorship,
    commits_touching_files,
    range_has_merges,
)

__all__ = ["Origin", "blame_lines"]


def _origin(repo, sha: str) -> Origin:
    return Origin(*commit_authorship(repo, sha))


def _blame_file(repo, rng: PushRange, path: str, lines: list[int]) -> dict[int, Origin]:
    origins: dict[str, Origin] = {}
    return {n: origins.setdefault(a.commit, Origin(*a))
            for n, a in blame_lines_in_range(repo, rng.rev_range, path, lines).items()}


def blame_lines(repo_dir: Path, rng: PushRange, wanted: dict[str, list[int]],
                renamed: set[str] | frozenset[str] = frozenset()) -> dict[str, dict[int, Origin]]:
    """Origin of each wanted line per file (lines at head numbering); ``renamed``: files the
    range renamed (they always go through blame)."""
    wanted = {p: lines for p, lines in wanted.items() if lines}
    if not wanted:
        return {}
    repo = open_repo(repo_dir)
    if rng.sole_commit:
        origin = _origin(repo, rng.sole_commit)
        return {p: {n: origin for n in lines} for p, lines in wanted.items()}
    result: dict[str, dict[int, Origin]] = {}
    origins: dict[str, Origin] = {}
    for path, sha in _files_of_one_commit(repo, rng, renamed).items():
        if path in wanted:
            origin = origins.setdefault(sha, _origin(repo, sha))
            result[path] = {n: origin for n in wanted.pop(path)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {p: pool.submit(_blame_file, open_repo(repo_dir), rng, p, lines)
                   for p, lines in wanted.items()}
        result.update({p: f.result() for p, f in futures.items()})
    return result


def _files_of_one_commit(repo, rng: PushRange, renamed: set[str] | frozenset[str]
                         ) -> dict[str, str]:
    """Files that exactly one commit of the range touched: all their new lines come from it,
    no blame needed. Not used across merges (a merge may rewrite lines without listing the
    file) nor for files renamed in the range (earlier edits were under the old name)."""
    if range_has_merges(repo, rng.rev_range):
        return {}
    touched = commits_touching_files(repo, rng.rev_range)
    return {path: shas[0] for path, shas in touched.items()
            if len(shas) == 1 and path not in renamed}
