"""Fixtures of the sharding tests: database URLs on SQLite and on the real PostgreSQL."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    return request.getfixturevalue("pg_url")
