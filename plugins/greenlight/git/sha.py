"""What a sha string means before any repository is opened (no gitpython: cheap to import)."""
from __future__ import annotations


def is_null_sha(sha: str | None) -> bool:
    """The one rule for "no commit": missing, empty, or all zeros (git's null object id, 40
    characters in sha1 repositories, 64 in sha256 ones, what hooks get for a created or deleted
    ref)."""
    return not sha or set(sha) == {"0"}
