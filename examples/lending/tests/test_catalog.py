import pytest

from lending.catalog import MAX_LOANS, Catalog, LendingError


def test_borrow_and_return_move_a_copy():
    shelf = Catalog()
    shelf.borrow("ann", "ulysses")
    assert shelf.available("ulysses") == 0
    with pytest.raises(LendingError, match="no copy"):
        shelf.borrow("bob", "ulysses")
    shelf.give_back("ann", "ulysses")
    assert shelf.available("ulysses") == 1


def test_rules_refuse_what_they_should():
    shelf = Catalog(copies={"dune": 9})
    with pytest.raises(LendingError, match="needs a member"):
        shelf.borrow("", "dune")
    with pytest.raises(LendingError, match="unknown book"):
        shelf.available("nope")
    for _ in range(MAX_LOANS):
        shelf.borrow("ann", "dune")
    with pytest.raises(LendingError, match="already holds"):
        shelf.borrow("ann", "dune")
    with pytest.raises(LendingError, match="does not hold"):
        shelf.give_back("bob", "dune")
