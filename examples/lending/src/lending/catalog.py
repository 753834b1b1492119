"""The lending rules, without HTTP: which book is on the shelf, who holds it."""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_LOANS = 3


class LendingError(Exception):
    """A request the rules refuse; the message says why."""


@dataclass
class Catalog:
    copies: dict[str, int] = field(default_factory=lambda: {"dune": 3, "emma": 2, "ulysses": 1})
    loans: dict[str, list[str]] = field(default_factory=dict)

    def available(self, book: str) -> int:
        if book not in self.copies:
            raise LendingError(f"unknown book {book!r}")
        held = sum(books.count(book) for books in self.loans.values())
        return self.copies[book] - held

    def borrow(self, member: str, book: str) -> None:
        if not member:
            raise LendingError("a loan needs a member")
        if self.available(book) < 1:
            raise LendingError(f"no copy of {book!r} on the shelf")
        held = self.loans.setdefault(member, [])
        if len(held) >= MAX_LOANS:
            raise LendingError(f"{member} already holds {MAX_LOANS} books")
        held.append(book)

    def give_back(self, member: str, book: str) -> None:
        held = self.loans.get(member, [])
        if book not in held:
            raise LendingError(f"{member} does not hold {book!r}")
        held.remove(book)
