"""Set up the target repository's virtualenv on a worker, cached by its requirements.

Building a venv from PyPI on every push would dominate push-to-verdict time, so the venv lives in
a cache keyed by the requirements file's content and the Python version, is built once under an
exclusive lock (two workers may ask at once), and is linked into the build directory.

    python -m greenlight.worker.venv --requirements requirements.txt --cache DIR --link .venv
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path


def cache_key(requirements: Path) -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    if requirements.exists():
        digest.update(requirements.read_bytes())
    return digest.hexdigest()[:16]


def ensure_venv(requirements: Path, cache: Path) -> Path:
    """Return a ready venv for ``requirements``, building it once under a lock."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / cache_key(requirements)
    ready = target / ".ready"
    if ready.exists():
        return target
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        if requirements.exists():
            subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", "-r", str(requirements)], check=True)
        ready.touch()
    return target


def link(target: Path, name: Path) -> None:
    """Point ``name`` at ``target`` atomically (replace an older link)."""
    tmp = name.with_name(f".{name.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    if name.exists() and not name.is_symlink():
        shutil.rmtree(name)
    os.replace(tmp, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", default="requirements.txt", type=Path)
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--link", default=".venv", type=Path)
    args = parser.parse_args(argv)
    try:
        target = ensure_venv(args.requirements, args.cache)
    except subprocess.CalledProcessError as exc:
        print(f"installing {args.requirements} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    link(target, args.link)
    print(f"venv {target} linked as {args.link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
