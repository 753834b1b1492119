"""Install the hooks: into a bare repository (server side) or a clone (client side).

Server: copies ``post-receive`` into ``<repo>/hooks`` and records the master's URL and the hook's
credentials in the repository's git config. Client: copies ``pre-push`` into a Greenlight hooks
folder inside the clone's git dir and points ``core.hooksPath`` at it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from greenlight.git import NotARepository, git_dir, write_config

HOOKS_DIR = Path(__file__).resolve().parents[3] / "hooks"


def _render(name: str, python: str) -> str:
    text = (HOOKS_DIR / name).read_text()
    return text.replace("INSTALL_PYTHON = None", f"INSTALL_PYTHON = {python!r}", 1)


def _write_executable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def _install_hook(folder: Path, name: str, python: str) -> Path:
    """Write hook ``name`` from its template into ``folder``, pinned to ``python``."""
    folder.mkdir(exist_ok=True)
    target = folder / name
    _write_executable(target, _render(name, python))
    return target


def install_server(bare: Path, url: str, user: str, password_file: Path,
                   repository: str | None = None, project: str | None = None,
                   python: str = sys.executable, timeout: float = 3.0) -> Path:
    gitdir = git_dir(bare)
    target = _install_hook(gitdir / "hooks", "post-receive", python)
    write_config(bare, {"greenlight": {
        "url": url, "user": user, "passwordFile": str(Path(password_file).resolve()),
        "repository": repository or str(gitdir.resolve()), "project": project or gitdir.stem,
        "timeout": str(timeout)}})
    return target


def install_client(clone: Path, python: str = sys.executable,
                   schema_dialect: str | None = None) -> Path:
    target = _install_hook(git_dir(clone) / "greenlight-hooks", "pre-push", python)
    values = {"core": {"hooksPath": str(target.parent)}}
    if schema_dialect:
        values["greenlight.schema"] = {"dialect": schema_dialect}
    write_config(clone, values)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hooks/install", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="side", required=True)
    server = sub.add_parser("server", help="install post-receive into a bare repository")
    server.add_argument("repo", type=Path)
    server.add_argument("--url", default="http://127.0.0.1:8010/")
    server.add_argument("--user", required=True)
    server.add_argument("--password-file", required=True, type=Path)
    server.add_argument("--repository", help="URL workers clone (default: the repo's path)")
    server.add_argument("--project")
    server.add_argument("--timeout", type=float, default=3.0)
    client = sub.add_parser("client", help="install pre-push into a clone (core.hooksPath)")
    client.add_argument("repo", type=Path)
    client.add_argument("--schema-dialect", choices=("mysql", "mariadb", "postgres"),
                        help="review migrations before each push with this SQL dialect")
    args = parser.parse_args(argv)
    try:
        if args.side == "server":
            path = install_server(args.repo, args.url, args.user, args.password_file,
                                  args.repository, args.project, timeout=args.timeout)
        else:
            path = install_client(args.repo, schema_dialect=args.schema_dialect)
    except NotARepository as exc:
        print(f"hooks/install: not a git repository: {exc}", file=sys.stderr)
        return 2
    print(f"installed {path}")
    return 0
