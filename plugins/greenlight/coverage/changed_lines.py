"""Which lines did a push add or change? The only module of the coverage engine that runs git.

One ``git diff -U0 -M`` between the two trees (through gitpython) gives every added or modified
line: renames are followed so a moved file contributes only its really edited lines, deleted files
and deleted lines contribute nothing, binary files have no hunks. The diff is tree to tree, so a
merge inside the range brings in exactly the lines the first-parent line did not have before.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import git

from greenlight.errors import UsageError
from greenlight.git import PushRange, open_repo, push_range, resolve_commit, unified_diff

__all__ = ["FileChange", "PushRange", "changed_lines", "dirty_paths", "open_repo",
           "parse_unified_zero", "resolve_commit", "resolve_range", "work_tree_root"]

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13,
            b'"': 34, b"\\": 92}


@dataclass(frozen=True)
class FileChange:
    """Added or modified lines of one file at head (``old_path`` set when it was renamed)."""

    path: str
    lines: frozenset[int]
    old_path: str | None = None


def work_tree_root(repo_dir: Path) -> Path:
    """The top of the work tree holding ``repo_dir`` (the CLI may run from a subfolder)."""
    root = open_repo(repo_dir).working_tree_dir
    if root is None:
        raise UsageError(f"{repo_dir} is a bare repository; pass --repo DIR of a checkout")
    return Path(root)


def resolve_range(repo: git.Repo, base: str | None, head: str) -> PushRange:
    """The pushed range base..head (a missing or all-zero base is a first push; after a force
    push only head's own lines count); its commits are kept only to tell a one-commit range."""
    return push_range(repo, base, head, commit_limit=2)


def _unquote(raw: bytes) -> bytes:
    """Undo git's C-style quoting of unusual paths ("a\\tb", octal escapes of bytes)."""
    if not raw.startswith(b'"'):
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i:i + 1]
        if ch == b"\\":
            nxt = body[i + 1:i + 2]
            if nxt.isdigit():
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt[0]))
            i += 2
            continue
        out += ch
        i += 1
    return bytes(out)


def _strip_prefix(raw: bytes, prefix: bytes) -> bytes:
    raw = _unquote(raw.rstrip(b"\t"))  # git appends a tab after names containing spaces
    return raw.removeprefix(prefix)


def parse_unified_zero(diff: bytes) -> list[FileChange]:
    """Parse ``git diff -U0`` output (pure: bytes in, changes out). Paths are decoded the way
    Python decodes file names (surrogateescape), so non-UTF-8 names round-trip to the disk."""
    changes: list[FileChange] = []
    path: bytes | None = None
    old: bytes | None = None
    lines: set[int] = set()

    def flush() -> None:
        if path is not None and lines:
            old_path = os.fsdecode(old) if old is not None and old != path else None
            changes.append(FileChange(os.fsdecode(path), frozenset(lines), old_path))

    for line in diff.split(b"\n"):
        if line.startswith(b"diff --git "):
            flush()
            path, old, lines = None, None, set()
        elif line.startswith(b"@@ "):
            match = _HUNK.match(line)
            if match and path is not None:
                start, count = int(match.group(1)), int(match.group(2) or 1)
                lines.update(range(start, start + count))
        elif line.startswith(b"--- ") and path is None:
            name = line[4:]
            old = None if name == b"/dev/null" else _strip_prefix(name, b"a/")
        elif line.startswith(b"+++ ") and path is None:
            name = line[4:]
            path = None if name == b"/dev/null" else _strip_prefix(name, b"b/")
    flush()
    return changes


def changed_lines(repo_dir: Path, base: str | None, head: str,
                  extensions: tuple[str, ...] = (".py",)) -> tuple[PushRange, list[FileChange]]:
    """Added and modified lines of base..head, per file, for files ending in ``extensions``
    (empty tuple = every text file)."""
    repo = open_repo(repo_dir)
    rng = resolve_range(repo, base, head)
    changes = parse_unified_zero(unified_diff(repo, rng))
    if extensions:
        changes = [c for c in changes if c.path.endswith(extensions)]
    return rng, changes


def dirty_paths(repo_dir: Path, head: str, paths: set[str]) -> list[str]:
    """Those of ``paths`` whose work-tree content differs from ``head``: coverage reads sources
    from the disk, so they must be the ones that were measured and that head holds."""
    if not paths:
        return []
    repo = open_repo(repo_dir)
    raw = repo.git.diff("--name-only", "-z", "--no-ext-diff", "--no-textconv", head, "--",
                        stdout_as_string=False)
    names = {os.fsdecode(n) for n in raw.split(b"\0") if n}
    return sorted(names & paths)
