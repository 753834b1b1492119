import pytest

from app.logic import InvalidAmount, Shop, UnknownUser, parse_amount


def test_register_then_login():
    shop = Shop()
    assert shop.register("Alice") is True
    assert shop.register("alice ") is False
    assert shop.login("ALICE") == "alice"


def test_login_unknown_user():
    with pytest.raises(UnknownUser):
        Shop().login("bob")


def test_purchase_adds_revenue():
    shop = Shop()
    shop.register("carol")
    assert shop.purchase("carol", "12.50") == 12.5
    assert shop.revenue == 12.5


@pytest.mark.parametrize("bad", ["", "abc", "0", "-3"])
def test_bad_amounts(bad):
    with pytest.raises(InvalidAmount):
        parse_amount(bad)
