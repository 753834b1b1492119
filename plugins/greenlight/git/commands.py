"""git command lines for checkouts this process does not hold (a worker's, run by a Buildbot
step): built here so that git's options live in the one git module. No gitpython import."""
from __future__ import annotations

# exit codes of ``git merge-base --is-ancestor``: 0 yes, 1 no, 128 a commit the checkout lacks
IS_ANCESTOR_EXIT_CODES = (0, 1, 128)


def is_ancestor_command(ancestor: str, descendant: str) -> list[str]:
    """``git merge-base --is-ancestor``: exits 0 when ``ancestor`` is an ancestor of
    ``descendant`` (see IS_ANCESTOR_EXIT_CODES)."""
    return ["git", "merge-base", "--is-ancestor", ancestor, descendant]
