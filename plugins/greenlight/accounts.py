"""Greenlight's password file: one ``user:pbkdf2_sha256$iterations$salt$hash`` line per user.

Plain-text password files (what twisted's FilePasswordDB reads) would leave every password
readable on disk; this keeps salted PBKDF2 hashes and verifies in constant time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from greenlight.errors import SettingsError

ITERATIONS = 200_000


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                     int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def read_password_file(path: Path) -> dict[str, str]:
    users: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read password file: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not user or not encoded.startswith("pbkdf2_sha256$"):
            raise SettingsError(f"{path}:{number}: expected 'user:pbkdf2_sha256$...' "
                                "(create users with `greenlight up` or accounts.set_password)")
        users[user.strip()] = encoded.strip()
    return users


def set_password(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in the file, written atomically with mode 0600."""
    if not user or ":" in user or "\n" in user:
        raise SettingsError(f"invalid user name {user!r}")
    users = read_password_file(path) if path.exists() else {}
    users[user] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{u}:{h}\n" for u, h in sorted(users.items()))
    os.replace(tmp, path)


def check_credentials(path: Path, user: str, password: str) -> bool:
    encoded = read_password_file(path).get(user)
    return bool(encoded) and verify_password(password, encoded)
