"""The server-side hook: report each pushed branch to the master; never fail or stall a push.

Configuration comes from the bare repository's git config (written by ``hooks/install``):
``greenlight.url``, ``greenlight.user``, ``greenlight.passwordFile``, ``greenlight.repository``,
``greenlight.project``, ``greenlight.spool`` and ``greenlight.timeout`` (seconds).
"""
from __future__ import annotations

import sys
from pathlib import Path

import git

from greenlight.git import open_repo
from greenlight.push import spool
from greenlight.push.changes import change_for, parse_ref_updates
from greenlight.push.deliver import Master, send_changes


def hook_settings(repo: git.Repo) -> tuple[Master, Path, str, str]:
    reader = repo.config_reader()

    def get(key: str, default: str = "") -> str:
        return str(reader.get_value("greenlight", key, default))

    password_file = get("passwordFile")
    password = Path(password_file).read_text().strip() if password_file else ""
    master = Master(url=get("url", "http://127.0.0.1:8010/"), username=get("user"),
                    password=password, timeout=float(get("timeout", "3")))
    spool_dir = Path(get("spool") or Path(repo.git_dir) / "greenlight-spool")
    repository = get("repository") or str(Path(repo.git_dir).resolve())
    return master, spool_dir, repository, get("project", Path(repository).stem)


def raw_dirs(repo: git.Repo, spool_dir: Path) -> list[Path]:
    """Where kept ref updates can be: the configured spool and the hook's fallback (the
    repository's own ``greenlight-spool``, all a hook without Greenlight can know)."""
    return list(dict.fromkeys([spool_dir, Path(repo.git_dir) / "greenlight-spool"]))


def spool_updates(repo: git.Repo, text: str, spool_dir: Path, repository: str,
                  project: str) -> None:
    for update in parse_ref_updates(text):
        change = change_for(repo, update, repository, project)
        if change is not None:
            spool.spool_change(spool_dir, change)  # on disk first: a crash loses nothing


def spool_kept_updates(repo: git.Repo) -> int:
    """Turn ref updates kept by a hook run that could not process them into changes, oldest
    first; each file is removed only once its changes are spooled."""
    _, spool_dir, repository, project = hook_settings(repo)
    done = 0
    for folder in raw_dirs(repo, spool_dir):
        for path in spool.raw_pending(folder):
            spool_updates(repo, path.read_text(encoding="utf-8"), spool_dir, repository,
                          project)
            path.unlink()
            done += 1
    return done


def flush_spool(repo: git.Repo, wait: bool = False) -> tuple[int, int]:
    spool_kept_updates(repo)
    master, spool_dir, _, _ = hook_settings(repo)
    return spool.flush(spool_dir, lambda changes: send_changes(master, changes), wait=wait)


def run(repo: git.Repo, stdin_text: str, out=sys.stdout) -> int:
    master, spool_dir, repository, project = hook_settings(repo)
    spool_kept_updates(repo)
    spool_updates(repo, stdin_text, spool_dir, repository, project)
    delivered, left = spool.flush(spool_dir, lambda changes: send_changes(master, changes))
    if delivered:
        print(f"greenlight: {delivered} change(s) sent to {master.url}", file=out)
    if left:
        print(f"greenlight: master not reachable; {left} change(s) kept in {spool_dir} and "
              "sent on the next push or by `greenlight flush`", file=out)
    return 0


def main() -> int:
    """Entry point of hooks/post-receive: whatever happens, the push has already succeeded."""
    text = sys.stdin.read()
    try:
        repo = open_repo(Path.cwd(), search_parent_directories=False)
        return run(repo, text)
    except Exception as exc:  # never fail the push, never lose it either
        kept = spool.keep_raw(Path.cwd() / "greenlight-spool", text) if text.strip() else None
        print(f"greenlight: could not notify the master ({type(exc).__name__}: {exc}); "
              "the push itself succeeded" + (f"; its ref updates are kept in {kept} for the "
                                             "next push or `greenlight flush`" if kept else ""),
              file=sys.stderr)
        return 0
