"""The client-side pre-push hook: run Greenlight's checks on the commits being pushed.

git hands the hook ``<local ref> <local sha> <remote ref> <remote sha>`` lines (all-zero sha =
new or deleted ref). Checks, each switched by git config:
- schema review of migrations (``greenlight.prepush.schema``, default on; override a refusal
  with ``GREENLIGHT_SCHEMA_OVERRIDE=1``; the server gate still applies),
- coverage of new lines (``greenlight.prepush.coverage``, default off; needs a .coverage file).
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import git

from greenlight.git import config_flag, has_commit, is_null_sha, open_repo, push_range


@dataclass(frozen=True)
class PushedRef:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_push_lines(text: str) -> list[PushedRef]:
    refs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            refs.append(PushedRef(*parts))
    return refs


def base_of(repo: git.Repo, ref: PushedRef, remote: str) -> str | None:
    """The commit new code starts after: the remote's sha (the merge base after a force push),
    or where a new branch forked from the remote's branches; None when all of it is new. A
    remote sha this clone has not fetched counts as a new branch: the checks can only see what
    the clone has."""
    old = ref.remote_sha if not is_null_sha(ref.remote_sha) and has_commit(
        repo, ref.remote_sha) else None
    others = [r.commit.hexsha for r in repo.remote(remote).refs] if remote in repo.remotes else []
    return push_range(repo, old, ref.local_sha, ref=ref.remote_ref,
                      others=others, commit_limit=1).new_code_base


CHECKS = (
    # (git config key, default, module holding pre_push_check, label, override variable).
    # A check is imported only when switched on (the schema parsers are slow to load), and
    # a broken import stops the push with its error instead of skipping the check.
    ("greenlight.prepush.schema", True, "schema_review.prepush", "schema review",
     "GREENLIGHT_SCHEMA_OVERRIDE"),
    ("greenlight.prepush.coverage", False, "greenlight.coverage.pre_push",
     "coverage of new lines", "GREENLIGHT_COVERAGE_OVERRIDE"),
)


def run(repo: git.Repo, remote: str, stdin_text: str, out=sys.stderr) -> int:
    refused = False
    for ref in parse_push_lines(stdin_text):
        if is_null_sha(ref.local_sha):
            continue  # deleting a remote branch: nothing to check
        base = base_of(repo, ref, remote)
        for key, default, module, label, override in CHECKS:
            if not config_flag(repo, key, default):
                continue
            check = importlib.import_module(module).pre_push_check
            ok, message = check(Path(repo.working_tree_dir), base, ref.local_sha)
            if message:
                print(message, file=out)
            if not ok:
                if os.environ.get(override) == "1":
                    print(f"greenlight: {label} refused the push; overridden by {override}=1 "
                          "(the server still checks)", file=out)
                else:
                    print(f"greenlight: {label} refused the push of {ref.local_ref}. Fix it, or "
                          f"push with {override}=1 to override (the server still checks).",
                          file=out)
                    refused = True
    return 1 if refused else 0


def main(argv: list[str]) -> int:
    remote = argv[0] if argv else "origin"
    repo = open_repo(Path.cwd())
    return run(repo, remote, sys.stdin.read())
