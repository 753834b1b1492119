"""Which migration files a push changed, and their text at a commit: schema review's questions
to git, asked through ``greenlight.git``."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from greenlight.git import changed_paths, config_value as git_config_value, open_repo, push_range
from greenlight.git.files import file_at, work_tree

MIGRATION_SUFFIXES = (".sql",)


def _repo(repo_dir: Path | str):
    return open_repo(repo_dir)


def _under(path: str, dirs: list[str]) -> bool:
    posix = PurePosixPath(path)
    for d in dirs:
        d = d.strip("/") or "."
        if d == "." or posix == PurePosixPath(d) or PurePosixPath(d) in posix.parents:
            return True
    return False


def changed_migrations(repo_dir: Path | str, base: str | None, head: str,
                       dirs: list[str]) -> list[str]:
    """Repo-relative paths of migration files added or modified in base..head under ``dirs``
    (sorted, so NNNN_ prefixes run in order).  No base (or the all-zero sha of a new branch):
    every migration file at head; a base head does not descend from (a force push): what head
    changed since their merge base."""
    repo = _repo(repo_dir)
    rng = push_range(repo, base, head, commit_limit=1)
    paths = changed_paths(repo, rng, diff_filter="ACMR")
    return sorted(p for p in paths if p.endswith(MIGRATION_SUFFIXES) and _under(p, dirs))


def read_at(repo_dir: Path | str, commit: str, path: str) -> str:
    """A file's text at ``commit`` (what is pushed, not the work tree)."""
    return file_at(_repo(repo_dir), commit, path).decode("utf-8", "replace")


def repo_root(repo_dir: Path | str) -> Path:
    return work_tree(_repo(repo_dir))


def config_value(repo_dir: Path | str, key: str) -> str | None:
    """``git config key`` or None."""
    return git_config_value(_repo(repo_dir), key)
