"""Who is asking, what may they do, and is the request really theirs (CSRF).

Buildbot authorizes its REST API but not ``/plugins/*``: Greenlight's pages check here.
- The user comes from Buildbot's own session cookie (a JWT signed with the master's session
  secret), so logging into the Buildbot UI logs into the pages too; API clients may instead
  send HTTP Basic credentials checked against the password file.
- Roles come from the settings' ``[auth] roles`` table, the same source Buildbot's authz uses.
- State-changing requests need a CSRF token bound to the user (HMAC with the session secret)
  and, when the browser sends one, an Origin/Referer of this very host.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from greenlight.accounts import check_credentials

COOKIE = "TWISTED_SESSION"


@dataclass(frozen=True)
class User:
    name: str | None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def anonymous(self) -> bool:
        return self.name is None

    def has(self, role: str) -> bool:
        return role in self.roles


ANONYMOUS = User(None)


@dataclass
class Guard:
    """Identifies users and checks CSRF tokens for the Greenlight pages."""

    roles_by_user: dict[str, list[str]]
    password_file: Path
    session_secret: Callable[[], str]  # read lazily: Buildbot creates it at start-up

    def user_from(self, cookies: dict[str, str], authorization: str | None) -> User:
        name = self._user_from_cookie(cookies.get(COOKIE)) if cookies.get(COOKIE) else None
        if name is None and authorization:
            name = self._user_from_basic(authorization)
        if name is None:
            return ANONYMOUS
        return User(name, frozenset(self.roles_by_user.get(name, [])))

    def _user_from_cookie(self, token: str) -> str | None:
        from buildbot.www.auth import parse_user_info_from_token

        try:
            info = parse_user_info_from_token(token, self.session_secret())
        except Exception:
            return None
        return info.get("username") or None

    def _user_from_basic(self, header: str) -> str | None:
        import base64

        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if check_credentials(self.password_file, user, password) else None

    def csrf_token(self, user: User) -> str:
        key = self.session_secret().encode()
        return hmac.new(key, f"greenlight-csrf:{user.name}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, user: User, token: str | None, origin: str | None, referer: str | None,
                host: str | None) -> bool:
        if not token or not hmac.compare_digest(token, self.csrf_token(user)):
            return False
        for header in (origin, referer):
            if header and header != "null":
                if urlsplit(header).netloc != host:
                    return False
        return True
