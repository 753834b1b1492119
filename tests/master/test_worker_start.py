"""``up`` starts each local worker and waits for it to attach with its own deadline
(``START_TIMEOUT``), not Buildbot's fixed 10 s: under load a worker started beside its master
took longer, and ``up`` failed while the worker was still on its way (three stressed runs,
one lost two modules' worlds to it). A worker that never attaches is named, with its log."""
from __future__ import annotations

import threading
import time

import pytest
from greenlight import settings
from greenlight_master import lifecycle

from tests.conftest import free_ports, scaled, wait_for


def test_a_worker_that_cannot_attach_is_named_with_its_log(tmp_path, monkeypatch):
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n')
    loaded = settings.load(path)
    wdir = tmp_path / "worker"
    port = free_ports(1)[0]   # nothing listens there: the worker retries, never attaches
    lifecycle.create_worker(wdir, f"127.0.0.1:{port}", "lonely", "secret")
    monkeypatch.setenv("START_TIMEOUT", "3")
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as failure:
            lifecycle.start_worker("lonely", wdir, loaded)
    finally:
        lifecycle.stop_pidfiles([wdir / "twistd.pid"])
    took = time.monotonic() - started
    message = str(failure.value)
    assert message.startswith("worker lonely did not attach to the master within 3 s "
                              "(START_TIMEOUT); the end of "), message
    assert str(wdir / "twistd.log") in message
    assert "Scheduling retry" in message, message   # what the worker did meanwhile
    assert 3 <= took < scaled(30)


def test_the_attach_deadline_reads_start_timeout(monkeypatch):
    monkeypatch.delenv("START_TIMEOUT", raising=False)
    assert lifecycle.start_timeout() == 60
    monkeypatch.setenv("START_TIMEOUT", "95")
    assert lifecycle.start_timeout() == 95
    monkeypatch.setenv("START_TIMEOUT", "soon")
    assert lifecycle.start_timeout() == 60


def test_a_worker_that_dies_while_awaited_is_named_at_once(tmp_path, monkeypatch):
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n')
    loaded = settings.load(path)
    wdir = tmp_path / "worker"
    lifecycle.create_worker(wdir, f"127.0.0.1:{free_ports(1)[0]}", "shortlived", "secret")
    monkeypatch.setenv("START_TIMEOUT", "600")
    pidfile = wdir / "twistd.pid"

    def kill_once_running() -> None:   # (under load the pid file can take seconds to appear)
        wait_for(pidfile.exists, 60, "the worker's pid file")
        lifecycle.stop_pidfiles([pidfile])

    killer = threading.Thread(target=kill_once_running)
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="^worker shortlived stopped; the end of "):
            lifecycle.start_worker("shortlived", wdir, loaded)
    finally:
        killer.join()
        lifecycle.stop_pidfiles([wdir / "twistd.pid"])
    assert time.monotonic() - started < 300   # well before the 600-s deadline
