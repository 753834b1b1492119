"""Turn the ref updates git hands a post-receive hook into change records for the master."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import git

from greenlight.git import PushRange, changed_paths, display_path, is_null_sha, push_range


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
        return is_null_sha(self.new)

    @property
    def is_creation(self) -> bool:
        return is_null_sha(self.old)


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


def changed_files(repo: git.Repo, rng: PushRange) -> list[str]:
    """Files the push changed (all of head's on a first push), printable: a non-UTF-8 name
    stays readable and reversible instead of breaking JSON or the master's database."""
    return [display_path(p) for p in changed_paths(repo, rng)]


def push_id(update: RefUpdate) -> str:
    """Identity of one ref update: the master builds each id once, however often it is sent."""
    return hashlib.sha1(f"{update.ref} {update.old} {update.new}".encode()).hexdigest()


def change_for(repo: git.Repo, update: RefUpdate, repository: str, project: str) -> dict | None:
    """The change record for one ref update, or ``None`` when nothing should be built."""
    if update.branch is None or update.is_deletion:
        return None
    others = [h.commit.hexsha for h in repo.heads if h.path != update.ref]
    rng = push_range(repo, update.old, update.new, ref=update.ref, others=others)
    head = repo.commit(rng.head)
    return {
        "revision": update.new,
        "branch": update.branch,
        "author": f"{head.author.name} <{head.author.email}>",
        "committer": f"{head.committer.name} <{head.committer.email}>",
        "comments": head.message,
        "when_timestamp": head.committed_date,
        "files": changed_files(repo, rng),
        "repository": repository,
        "project": project,
        "category": "push",
        "properties": {
            "greenlight_old": rng.base or "",
            "greenlight_new": update.new,
            "greenlight_base": rng.new_code_base or "",
            "greenlight_commits": list(rng.commits),
            "greenlight_forced": rng.forced,
            "greenlight_push_id": push_id(update),
        },
    }
