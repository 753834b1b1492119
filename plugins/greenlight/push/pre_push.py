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

ZERO = "0" * 40


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
    """The commit the pushed range starts from: the remote's sha, or where a new branch forked."""
    if set(ref.remote_sha) != {"0"} and repo.is_valid_object(ref.remote_sha):
        return ref.remote_sha
    others = [r.commit.hexsha for r in repo.remote(remote).refs] if remote in repo.remotes else []
    bases = repo.merge_base(ref.local_sha, *others) if others else []
    return bases[0].hexsha if bases else None


CHECKS = (
    # (git config key, default, module, label, override environment variable)
    ("greenlight.prepush.schema", True, "schema_review", "schema review",
     "GREENLIGHT_SCHEMA_OVERRIDE"),
    ("greenlight.prepush.coverage", False, "greenlight.coverage", "coverage of new lines",
     "GREENLIGHT_COVERAGE_OVERRIDE"),
)


def _enabled(repo: git.Repo, key: str, default: bool) -> bool:
    section, option = key.rsplit(".", 1)
    value = repo.config_reader().get_value(section, option, default)
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def run(repo: git.Repo, remote: str, stdin_text: str, out=sys.stderr) -> int:
    refused = False
    for ref in parse_push_lines(stdin_text):
        if set(ref.local_sha) == {"0"}:
            continue  # deleting a remote branch: nothing to check
        base = base_of(repo, ref, remote)
        for key, default, module_name, label, override in CHECKS:
            if not _enabled(repo, key, default):
                continue
            try:
                check = importlib.import_module(module_name).pre_push_check
            except (ImportError, AttributeError):
                continue
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
    repo = git.Repo(Path.cwd(), search_parent_directories=True)
    return run(repo, remote, sys.stdin.read())
