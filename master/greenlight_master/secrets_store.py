"""Secrets the master and its parts share (worker password, change-hook password).

Generated on first use into the state directory with mode 0600, so a fresh clone needs no
secret in a settings file and nothing secret is committed.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from greenlight.settings import Settings


def read_or_create(path: Path, nbytes: int = 18) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def change_hook_password(settings: Settings) -> str:
    """The password the server hook sends to the master's change hook."""
    return read_or_create(settings.path("change_hook", "password_file"))
