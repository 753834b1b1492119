"""The spool keeps every change until the master accepted it, in order, exactly once."""
from __future__ import annotations

import json

from greenlight.push import spool
from greenlight.push.deliver import DeliveryError


def change(n: int) -> dict:
    return {"revision": f"{n:040d}", "branch": "main",
            "properties": {"greenlight_push_id": f"{n:040x}"}}


def test_flush_sends_in_order_and_removes(tmp_path):
    for n in range(3):
        spool.spool_change(tmp_path, change(n))
    sent = []
    assert spool.flush(tmp_path, lambda cs: sent.extend(cs)) == (3, 0)
    assert [c["revision"] for c in sent] == [f"{n:040d}" for n in range(3)]
    assert spool.pending(tmp_path) == []


def test_failure_keeps_the_rest_for_later(tmp_path):
    for n in range(3):
        spool.spool_change(tmp_path, change(n))
    calls = []

    def flaky(changes):
        calls.append(changes[0]["revision"])
        if len(calls) == 2:
            raise DeliveryError("master down")

    assert spool.flush(tmp_path, flaky) == (1, 2)
    remaining = [json.loads(p.read_text())["revision"] for p in spool.pending(tmp_path)]
    assert remaining == [f"{1:040d}", f"{2:040d}"]


def test_malformed_change_rejected_by_master_is_set_aside(tmp_path):
    spool.spool_change(tmp_path, change(1))
    spool.spool_change(tmp_path, change(2))

    def refuse_first(changes):
        if changes[0]["revision"] == f"{1:040d}":
            raise DeliveryError("HTTP 400", permanent=True)

    assert spool.flush(tmp_path, refuse_first) == (1, 0)
    assert len(list(tmp_path.glob("*.rejected"))) == 1


def test_concurrent_flush_does_not_double_send(tmp_path):
    spool.spool_change(tmp_path, change(1))
    with spool._locked(tmp_path, wait=True):
        assert spool.flush(tmp_path, lambda cs: None) == (0, 1)
