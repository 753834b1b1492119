"""Turn the ref updates git hands a post-receive hook into change records for the master."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import git

ZERO = "0" * 40


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else None

    @property
    def is_deletion(self) -> bool:
        return set(self.new) == {"0"}

    @property
    def is_creation(self) -> bool:
        return set(self.old) == {"0"}


def parse_ref_updates(text: str) -> list[RefUpdate]:
    """Parse ``<old> <new> <ref>`` lines (what git writes to a post-receive hook's stdin)."""
    updates = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3 or len(parts[0]) not in (40, 64) or len(parts[1]) not in (40, 64):
            raise ValueError(f"stdin line {number}: expected '<old> <new> <ref>', got {line!r}")
        updates.append(RefUpdate(*parts))
    return updates


def _decode_path(raw: bytes) -> str:
    # Non-UTF-8 file names stay readable and reversible instead of breaking JSON or the DB.
    return raw.decode("utf-8", "backslashreplace")


def changed_files(repo: git.Repo, old: str | None, new: str) -> list[str]:
    """Files changed from ``old`` to ``new`` (``None``: every file of ``new``), NUL-safe."""
    if old:
        out = repo.git.execute(["git", "diff", "--name-only", "-z", "--no-renames", old, new],
                               stdout_as_string=False)
    else:
        out = repo.git.execute(["git", "ls-tree", "-r", "-z", "--name-only", new],
                               stdout_as_string=False)
    return [_decode_path(p) for p in out.split(b"\0") if p]


def push_id(update: RefUpdate) -> str:
    """Identity of one ref update: the master builds each id once, however often it is sent."""
    return hashlib.sha1(f"{update.ref} {update.old} {update.new}".encode()).hexdigest()


def change_for(repo: git.Repo, update: RefUpdate, repository: str, project: str) -> dict | None:
    """The change record for one ref update, or ``None`` when nothing should be built."""
    branch = update.branch
    if branch is None or update.is_deletion:
        return None
    head = repo.commit(update.new)
    other_heads = [h.commit.hexsha for h in repo.heads if h.path != update.ref]
    forced = False
    if update.is_creation:
        # New branch: the commits no other branch already has; base = where it forked.
        rev_args = [update.new, *(f"^{sha}" for sha in other_heads)]
        bases = repo.merge_base(update.new, *other_heads) if other_heads else []
        base = bases[0].hexsha if bases else None
    else:
        forced = not repo.is_ancestor(update.old, update.new)
        rev_args = [f"{update.old}..{update.new}"]
        base = update.old
    commits = [c.hexsha for c in repo.iter_commits(rev_args)] if rev_args else []
    commits.reverse()
    if forced:
        bases = repo.merge_base(update.old, update.new)
        base = bases[0].hexsha if bases else None
    return {
        "revision": update.new,
        "branch": branch,
        "author": f"{head.author.name} <{head.author.email}>",
        "committer": f"{head.committer.name} <{head.committer.email}>",
        "comments": head.message,
        "when_timestamp": head.committed_date,
        "files": changed_files(repo, base, update.new),
        "repository": repository,
        "project": project,
        "category": "push",
        "properties": {
            "greenlight_old": "" if update.is_creation else update.old,
            "greenlight_new": update.new,
            "greenlight_base": base or "",
            "greenlight_commits": commits,
            "greenlight_forced": forced,
            "greenlight_push_id": push_id(update),
        },
    }
