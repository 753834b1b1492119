"""A real git repository plus a real deploy ledger (SQLite file), with deploys at chosen times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from greenlight.deploy.ledger import Ledger

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)   # the incident starts here


def logic_source(overrides: dict[int, str] | None = None, lines: int = 40) -> str:
    """A Python file whose line N is ``value_N = N`` unless overridden: easy to point a trace at."""
    body = [f"value_{n} = {n}" for n in range(1, lines + 1)]
    for n, text in (overrides or {}).items():
        body[n - 1] = text
    return "\n".join(body) + "\n"


class World:
    def __init__(self, repo, ledger: Ledger):
        self.repo = repo
        self.ledger = ledger
        self.hosts = ["web1", "web2"]

    def deploy(self, sha: str, previous: str | None, at: datetime, *, outcome: str = "success",
               kind: str = "deploy", hosts: list[str] | None = None, minutes: int = 2) -> int:
        hosts = hosts or self.hosts
        deploy_id = self.ledger.start_deploy(sha, previous, hosts=hosts, kind=kind, at=at)
        for host in hosts:
            self.ledger.record_host_release(host, sha, deploy_id, at=at + timedelta(minutes=1))
        self.ledger.finish_deploy(deploy_id, outcome, at=at + timedelta(minutes=minutes))
        return deploy_id


@pytest.fixture
def world(make_repo, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    yield World(make_repo("shop"), ledger)
    ledger.close()


def trace_for(*frames: tuple[str, int, str]) -> str:
    """A real-looking Python traceback through the release directory of a host."""
    lines = ["Traceback (most recent call last):"]
    for path, line, func in frames:
        lines.append(f'  File "/srv/shop/releases/abc123/{path}", line {line}, in {func}')
        lines.append("    do_something()")
    lines.append("ZeroDivisionError: division by zero")
    return "\n".join(lines) + "\n"
