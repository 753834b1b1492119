"""Business rules of the demo shop, free of HTTP so they are easy to test."""
from __future__ import annotations

import threading


class UnknownUser(Exception):
    """Login or purchase by a user who never registered."""


class InvalidAmount(ValueError):
    """A purchase amount that is not a positive number."""


class Shop:
    """In-memory users and purchases; thread-safe because the server is threaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: set[str] = set()
        self._revenue = 0.0

    def register(self, user: str) -> bool:
        """Register ``user``; returns False when already registered."""
        user = normalize_user(user)
        with self._lock:
            if user in self._users:
                return False
            self._users.add(user)
            return True

    def login(self, user: str) -> str:
        user = normalize_user(user)
        with self._lock:
            if user not in self._users:
                raise UnknownUser(user)
        return user

    def purchase(self, user: str, amount: str | float) -> float:
        self.login(user)
        value = parse_amount(amount)
        with self._lock:
            self._revenue += value
        return value

    @property
    def revenue(self) -> float:
        return self._revenue


def normalize_user(user: str) -> str:
    user = (user or "").strip().lower()
    if not user:
        raise UnknownUser("empty user name")
    return user


def parse_amount(amount: str | float) -> float:
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise InvalidAmount(f"not a number: {amount!r}") from None
    if not value > 0:
        raise InvalidAmount(f"must be positive: {amount!r}")
    return round(value, 2)
