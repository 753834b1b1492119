"""Who last wrote lines, and which commits touched which files: the git side of the coverage
gate's blame (``greenlight.coverage.blame`` decides what to ask)."""
from __future__ import annotations

import os
from typing import NamedTuple

import git


class Authorship(NamedTuple):
    """A commit as blame reports it: sha, author name and e-mail, subject line."""

    commit: str
    author: str
    email: str
    summary: str


def line_ranges(lines: list[int]) -> list[str]:
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


def commit_authorship(repo: git.Repo, sha: str) -> Authorship:
    commit = repo.commit(sha)
    return Authorship(commit.hexsha, commit.author.name or "", commit.author.email or "",
                      commit.summary if isinstance(commit.summary, str)
                      else commit.summary.decode())


def blame_lines_in_range(repo: git.Repo, rev_range: str, path: str,
                         lines: list[int]) -> dict[int, Authorship]:
    """The commit that last wrote each of ``lines`` (head numbering), by ``git blame
    --incremental -L… rev_range -- path``: lines older than the range are git's boundary
    commit (the range's base)."""
    wanted = set(lines)
    found: dict[int, Authorship] = {}
    args = [f"-L{r}" for r in line_ranges(lines)]
    output = repo.git.blame("--incremental", *args, rev_range, "--", path,
                            stdout_as_string=False)
    origins: dict[bytes, Authorship] = {}
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
                origins[current] = Authorship(
                    current.decode(), fields[b"author"].decode("utf-8", "replace"),
                    fields.get(b"author-mail", b"").strip(b"<>").decode("utf-8", "replace"),
                    fields.get(b"summary", b"").decode("utf-8", "replace"))
            origin = origins.get(current) or commit_authorship(repo, current.decode())
            origins[current] = origin
            for n in range(start, start + count):
                if n in wanted:
                    found[n] = origin
            current = None
        elif current is not None:
            key, _, value = line.partition(b" ")
            fields[key] = value
    return found


def range_has_merges(repo: git.Repo, rev_range: str) -> bool:
    return bool(repo.git.rev_list("--merges", "--max-count=1", rev_range))


def commits_touching_files(repo: git.Repo, rev_range: str) -> dict[str, list[str]]:
    """Each path the commits of ``rev_range`` touched (renames not followed) -> those commits'
    shas, newest first."""
    raw = repo.git.log("--no-renames", "--format=%x01%H", "--name-only", "-z", rev_range,
                       stdout_as_string=False)
    touched: dict[str, list[str]] = {}
    for record in raw.split(b"\x01")[1:]:
        sha, _, names = record.partition(b"\0")
        for name in names.lstrip(b"\n").split(b"\0"):
            if name:
                touched.setdefault(os.fsdecode(name), []).append(sha.decode())
    return touched
