"""Who introduced each uncovered line, and in which commit (git blame at head, via gitpython).

Blame is limited to the pushed range (``base..head``) and to the uncovered lines, so its cost
follows the number of problems, not the size of the diff; a range of one commit needs no blame.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import git

from greenlight.coverage.changed_lines import open_repo
from greenlight.coverage.report import Origin
from greenlight.git import PushRange

__all__ = ["Origin", "blame_lines"]


def _ranges(lines: list[int]) -> list[str]:
    """Consecutive line numbers as blame ``-L start,end`` arguments."""
    out, start, prev = [], None, None
    for n in sorted(lines):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start},{prev}")
            start = prev = n
    if start is not None:
        out.append(f"{start},{prev}")
    return out


def _origin(commit: git.Commit) -> Origin:
    return Origin(commit.hexsha, commit.author.name or "", commit.author.email or "",
                  commit.summary if isinstance(commit.summary, str) else commit.summary.decode())


def _blame_file(repo: git.Repo, rng: PushRange, path: str, lines: list[int]) -> dict[int, Origin]:
    wanted = set(lines)
    found: dict[int, Origin] = {}
    args = [f"-L{r}" for r in _ranges(lines)]
    output = repo.git.blame("--incremental", *args, rng.rev_range, "--", path,
                            stdout_as_string=False)
    origins: dict[bytes, Origin] = {}
    current: bytes | None = None
    start = count = 0
    fields: dict[bytes, bytes] = {}
    for line in output.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) == 4 and len(parts[0]) in (40, 64):
            current, start, count = parts[0], int(parts[2]), int(parts[3])
            fields = {}
        elif current is not None and line.startswith(b"filename "):
            if current not in origins and b"author" in fields:
                origins[current] = Origin(
                    current.decode(), fields[b"author"].decode("utf-8", "replace"),
                    fields.get(b"author-mail", b"").strip(b"<>").decode("utf-8", "replace"),
                    fields.get(b"summary", b"").decode("utf-8", "replace"))
            origin = origins.get(current) or _origin(repo.commit(current.decode()))
            origins[current] = origin
            for n in range(start, start + count):
                if n in wanted:
                    found[n] = origin
            current = None
        elif current is not None:
            key, _, value = line.partition(b" ")
            fields[key] = value
    return found


def blame_lines(repo_dir: Path, rng: PushRange, wanted: dict[str, list[int]],
                renamed: set[str] | frozenset[str] = frozenset()) -> dict[str, dict[int, Origin]]:
    """Origin of each wanted line per file (lines at head numbering); ``renamed``: files the
    range renamed (they always go through blame)."""
    wanted = {p: lines for p, lines in wanted.items() if lines}
    if not wanted:
        return {}
    repo = open_repo(repo_dir)
    if rng.sole_commit:
        origin = _origin(repo.commit(rng.sole_commit))
        return {p: {n: origin for n in lines} for p, lines in wanted.items()}
    result: dict[str, dict[int, Origin]] = {}
    origins: dict[str, Origin] = {}
    for path, sha in _files_of_one_commit(repo, rng, renamed).items():
        if path in wanted:
            origin = origins.setdefault(sha, _origin(repo.commit(sha)))
            result[path] = {n: origin for n in wanted.pop(path)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {p: pool.submit(_blame_file, open_repo(repo_dir), rng, p, lines)
                   for p, lines in wanted.items()}
        result.update({p: f.result() for p, f in futures.items()})
    return result


def _files_of_one_commit(repo: git.Repo, rng: PushRange, renamed: set[str] | frozenset[str]
                         ) -> dict[str, str]:
    """Files that exactly one commit of the range touched: all their new lines come from it,
    no blame needed. Not used across merges (a merge may rewrite lines without listing the
    file) nor for files renamed in the range (earlier edits were under the old name)."""
    if repo.git.rev_list("--merges", "--max-count=1", rng.rev_range):
        return {}
    raw = repo.git.log("--no-renames", "--format=%x01%H", "--name-only", "-z", rng.rev_range,
                       stdout_as_string=False)
    touched: dict[str, list[str]] = {}
    for record in raw.split(b"\x01")[1:]:
        sha, _, names = record.partition(b"\0")
        for name in names.lstrip(b"\n").split(b"\0"):
            if name:
                touched.setdefault(os.fsdecode(name), []).append(sha.decode())
    return {path: shas[0] for path, shas in touched.items()
            if len(shas) == 1 and path not in renamed}
