"""The suite's one wait helper: condition + deadline that stretches with the load."""
from __future__ import annotations

import pytest

from tests.conftest import SLOWDOWN_ENV, scaled, slowdown, wait_for


def test_returns_the_first_truthy_value_and_retries_listed_errors():
    calls = []

    def condition():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("not up yet")
        return len(calls) >= 3 and "ready"

    assert wait_for(condition, 30, "the server", interval=0.01,
                    retry_on=(ConnectionError,)) == "ready"
    assert len(calls) == 3


def test_other_errors_are_not_swallowed():
    with pytest.raises(KeyError):
        wait_for(lambda: {}["missing"], 30, "a key", retry_on=(ConnectionError,))


def test_the_deadline_names_what_and_the_load_it_was_stretched_by(monkeypatch):
    monkeypatch.setenv(SLOWDOWN_ENV, "3")
    assert slowdown() == 3.0 and scaled(2) == 6.0

    def refused():
        raise ConnectionError("connection refused")

    with pytest.raises(AssertionError, match=r"\(0\.01 s x load 3\.0\) waiting for the master "
                                             r"\(last error: ConnectionError: connection "
                                             r"refused\)"):
        wait_for(refused, 0.01, "the master", interval=0.005, retry_on=(ConnectionError,))


def test_a_quiet_machine_never_shortens_a_deadline(monkeypatch):
    monkeypatch.delenv(SLOWDOWN_ENV, raising=False)
    assert 1.0 <= slowdown() <= 8.0
