"""What a push carries: one ``PushRange`` from a ref's old and new sha, for every consumer.

The post-receive hook, the pre-push hook, the coverage gate, schema review, incidents and deploy
all ask the same question ("which commits and which lines are new?"), so it has one answer here:
- the ref's old sha is missing or all zeros: a first push (a new branch); new code starts where
  it forked from the other branches given, or at the empty tree when it shares nothing;
- the old sha is not an ancestor of the new one: a force push; new code starts at their merge
  base (only the new line's own commits count), or at the empty tree without one;
- the new sha is all zeros: the ref was deleted; nothing is new.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from greenlight.errors import UsageError
from greenlight.git.sha import is_null_sha

# git's object id of the empty tree (sha1 and sha256 repositories): the "before" of a first push.
_EMPTY_TREE = {40: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
               64: "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"}


def open_repo(path: Path | str, search_parent_directories: bool = True) -> git.Repo:
    """The repository at (or, by default, above) ``path``, or a UsageError naming it."""
    try:
        return git.Repo(str(path), search_parent_directories=search_parent_directories)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError) as exc:
        raise UsageError(f"{path} is not in a git repository; pass a clone's directory") from exc


def resolve_commit(repo: git.Repo, rev: str, what: str) -> str:
    """The full sha of ``rev``, or a UsageError saying what to do. A name starting with "-"
    is refused before git sees it (it would read as an option)."""
    if rev.startswith("-"):
        raise UsageError(f"not a {what} revision: {rev!r}")
    try:
        return repo.commit(rev).hexsha
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        where = repo.working_tree_dir or repo.git_dir
        raise UsageError(f"unknown {what} revision {rev!r} in {where}: fetch it (git fetch) or "
                         "pass a sha that exists there") from exc


def has_commit(repo: git.Repo, sha: str) -> bool:
    """Whether ``sha`` names a commit this repository holds (a remote's sha may not be fetched)."""
    try:
        return repo.commit(sha).type == "commit"
    except (git.BadName, ValueError, git.GitCommandError):
        return False


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether ``descendant`` contains ``ancestor`` in its history (a commit is its own)."""
    return repo.is_ancestor(ancestor, descendant)


def _empty_tree_for(sha: str | None) -> str:
    """The empty tree in the hash of ``sha`` (sha1 unless it is a 64-character sha256)."""
    return _EMPTY_TREE.get(len(sha or ""), _EMPTY_TREE[40])


@dataclass(frozen=True)
class PushRange:
    """One ref update, resolved: where new code starts and which commits are new.

    ``base`` is the ref's previous sha (None on a first push); ``compared_with`` is the tree-ish
    new code is measured against (``base``, the fork point of a new branch, the merge base of a
    force push, or the empty tree); ``commits`` are the new commits, oldest first (at most
    ``commit_limit`` of the newest when one was given).
    """

    head: str | None
    base: str | None
    compared_with: str
    commits: tuple[str, ...]
    first_push: bool = False
    forced: bool = False
    deleted: bool = False
    ref: str | None = None

    @property
    def from_empty_tree(self) -> bool:
        """Every file of head is new (a first push that shares no history)."""
        return self.compared_with in _EMPTY_TREE.values()

    @property
    def new_code_base(self) -> str | None:
        """The commit new code starts after, or None when all of head is new."""
        return None if self.from_empty_tree else self.compared_with

    @property
    def rev_range(self) -> str:
        """The range for git log/blame: head alone when all of it is new."""
        return self.head if self.from_empty_tree else f"{self.compared_with}..{self.head}"

    @property
    def sole_commit(self) -> str | None:
        """The one new commit when there is exactly one (every new line then comes from it)."""
        return self.commits[0] if len(self.commits) == 1 else None

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/"):] if self.ref and self.ref.startswith(
            "refs/heads/") else None


def push_range(repo: git.Repo, old: str | None, new: str | None, ref: str | None = None,
               others: Iterable[str] = (), commit_limit: int | None = None) -> PushRange:
    """Resolve the update of ``ref`` from ``old`` to ``new``.

    ``others``: tips of the other branches (what the receiving side already has). A new branch
    is measured from where it forked from them, and its commits are those none of them holds.
    An ``old`` or ``new`` this repository does not hold raises a UsageError.
    """
    if is_null_sha(new):
        return PushRange(None, None if is_null_sha(old) else old, _empty_tree_for(old), (),
                         deleted=True, ref=ref)
    head = resolve_commit(repo, new, "head")
    first_push = is_null_sha(old)
    base = None if first_push else resolve_commit(repo, old, "base")
    forced = False
    if base is not None:
        exclude = [base]
        if repo.is_ancestor(base, head):
            compared_with = base
        else:
            forced = True
            merge_bases = repo.merge_base(base, head)
            compared_with = merge_bases[0].hexsha if merge_bases else _empty_tree_for(head)
    else:
        # A new branch: new code is what none of the other tips holds, measured from where the
        # branch forked from them.
        tips = sorted({resolve_commit(repo, t, "branch tip") for t in others})
        merge_bases = repo.merge_base(head, *tips) if tips else []
        compared_with = merge_bases[0].hexsha if merge_bases else _empty_tree_for(head)
        exclude = tips
    limit = [f"--max-count={commit_limit}"] if commit_limit else []
    listed = repo.git.rev_list(*limit, head, *(f"^{sha}" for sha in exclude), "--")
    commits = tuple(reversed(listed.split()))
    return PushRange(head, base, compared_with, commits, first_push=first_push, forced=forced,
                     ref=ref)


def changed_paths(repo: git.Repo, rng: PushRange, diff_filter: str | None = None,
                  renames: bool = False) -> list[str]:
    """Paths ``rng`` changed at head (``diff_filter`` as git's ``--diff-filter``, e.g. "ACMR").
    Names are decoded the way Python decodes file names (surrogateescape), so non-UTF-8 names
    round-trip to the disk; ``display_path`` makes them printable."""
    if rng.deleted:
        return []
    args = ["--name-only", "-z", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all",
            "--find-renames" if renames else "--no-renames"]
    if diff_filter:
        args.append(f"--diff-filter={diff_filter}")
    raw = repo.git.diff(*args, rng.compared_with, rng.head, "--", stdout_as_string=False)
    return [os.fsdecode(name) for name in raw.split(b"\0") if name]


def unified_diff(repo: git.Repo, rng: PushRange, paths: Sequence[str] = ()) -> bytes:
    """``git diff -U0 --find-renames`` of the range without deletions, as bytes (for parsers of
    added and modified lines: binary files have no hunks, renames show only real edits)."""
    if rng.deleted:
        return b""
    return repo.git.diff(
        "--no-color", "--no-ext-diff", "--no-textconv", "--unified=0", "--find-renames",
        "--diff-filter=d", "--ignore-submodules=all", "--src-prefix=a/", "--dst-prefix=b/",
        rng.compared_with, rng.head, "--", *paths, stdout_as_string=False,
        strip_newline_in_stdout=False)


def display_path(path: str) -> str:
    """A path fit for JSON, a database or a page: undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
