"""The ledger on SQLite and on the real PostgreSQL: writes, and the incident engine's queries."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from greenlight.deploy.ledger import Ledger
from greenlight.errors import GreenlightError

@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = Ledger(f"sqlite:///{tmp_path}/ledger.sqlite")
    else:
        led = Ledger(request.getfixturevalue("pg_url"))
    yield led
    led.close()


T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_deploy_lifecycle_and_queries(ledger):
    d1 = ledger.start_deploy("a" * 40, None, branch="main", commits=["a" * 40], trigger="push",
                             hosts=["h1", "h2"], at=T0)
    ledger.record_host_release("h1", "a" * 40, d1, at=T0 + timedelta(seconds=5))
    ledger.record_host_release("h2", "a" * 40, d1, at=T0 + timedelta(seconds=6))
    ledger.finish_deploy(d1, "success", at=T0 + timedelta(seconds=10))

    d2 = ledger.start_deploy("b" * 40, "a" * 40, branch="main", commits=["c" * 40, "b" * 40],
                             trigger="buildbot", hosts=["h1", "h2"], at=T0 + timedelta(hours=1))
    ledger.record_event(d2, "canary", host="h1", release="b" * 40,
                        data={"verdict": "fail", "metrics": {"logins": 0.0}},
                        at=T0 + timedelta(hours=1, seconds=3))
    ledger.record_host_release("h1", "b" * 40, d2, at=T0 + timedelta(hours=1, seconds=2))
    ledger.record_host_release("h1", "a" * 40, d2, at=T0 + timedelta(hours=1, seconds=9))
    ledger.mark_bad("b" * 40, d2, "logins dropped")
    inc = ledger.record_incident("canary failed: logins", deploy_id=d2, sha="b" * 40,
                                 data={"failing": ["logins"]})
    ledger.finish_deploy(d2, "rolled_back", at=T0 + timedelta(hours=1, seconds=10))

    rec = ledger.deploy(d2)
    assert rec.sha == "b" * 40 and rec.previous_sha == "a" * 40
    assert rec.commits == ["c" * 40, "b" * 40] and rec.outcome == "rolled_back"
    assert rec.started_at == T0 + timedelta(hours=1)
    assert [e.phase for e in rec.events] == ["canary"]
    assert rec.events[0].data["metrics"] == {"logins": 0.0}
    assert rec.to_json()["events"][0]["host"] == "h1"

    between = ledger.deploys_between(T0 + timedelta(minutes=30), T0 + timedelta(hours=2))
    assert [d.id for d in between] == [d2]
    assert [d.id for d in ledger.deploys_between(T0, T0 + timedelta(hours=2))] == [d1, d2]
    # naive datetimes and epoch floats are UTC too
    assert [d.id for d in ledger.deploys_between(T0.timestamp() - 1, T0.timestamp() + 1)] == [d1]

    assert ledger.live_at(T0 + timedelta(seconds=5.5)) == {"h1": "a" * 40}
    assert ledger.live_at(T0 + timedelta(hours=1, seconds=5)) == {"h1": "b" * 40, "h2": "a" * 40}
    assert ledger.live_at(T0 + timedelta(hours=2)) == {"h1": "a" * 40, "h2": "a" * 40}

    assert ledger.is_bad("b" * 40) and not ledger.is_bad("a" * 40)
    assert ledger.bad_releases() == {"b" * 40: "logins dropped"}
    [incident] = ledger.incidents()
    assert incident.id == inc and incident.data == {"failing": ["logins"]}
    assert [d.id for d in ledger.list_deploys()] == [d2, d1]
    assert ledger.last_deploy(outcome="success").id == d1


def test_unknown_deploy_and_bad_outcome(ledger):
    with pytest.raises(GreenlightError, match="not in the ledger"):
        ledger.deploy(4242)
    d = ledger.start_deploy("a" * 40, None)
    assert [r.id for r in ledger.unfinished_deploys()] == [d]
    with pytest.raises(ValueError):
        ledger.finish_deploy(d, "great")


def test_bad_url_is_reported():
    with pytest.raises(GreenlightError, match="not usable"):
        Ledger("nosuchdb://x/y")
