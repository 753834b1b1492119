"""The one place Greenlight reads git (through gitpython): what a push carries, history, blame.

Every engine that needs git (push hooks, coverage, schema review, incidents, deploy) imports from
here; nothing else runs git. ``is_null_sha`` is loaded at once; the rest on first use, so that a
caller that only tests a sha does not pay for gitpython.
"""
from __future__ import annotations

import importlib

from greenlight.git.sha import is_null_sha

_EXPORTS = {
    "PushRange": "ranges", "changed_paths": "ranges", "display_path": "ranges",
    "has_commit": "ranges", "is_ancestor": "ranges", "open_repo": "ranges",
    "push_range": "ranges", "resolve_commit": "ranges", "unified_diff": "ranges",
    "config_flag": "config", "config_value": "config", "git_dir": "config",
    "NotARepository": "config", "write_config": "config",
    "is_ancestor_command": "commands",
    "create_bare_repo": "repos", "commit_all_and_push": "repos", "files_at_branch": "repos",
    "BranchUnreadable": "repos", "remote_branch_sha": "repos",
}
__all__ = ["BranchUnreadable", "NotARepository", "PushRange", "changed_paths",
           "commit_all_and_push", "config_flag", "config_value", "create_bare_repo", "display_path",
           "files_at_branch", "git_dir", "has_commit", "is_ancestor", "is_ancestor_command",
           "is_null_sha", "open_repo", "push_range", "remote_branch_sha", "resolve_commit",
           "unified_diff", "write_config"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"greenlight.git.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
