"""``up`` starts the master as ``buildbot start`` does (twistd on its buildbot.tac) and waits for
its log with one deadline (``START_TIMEOUT``); a master that fails to start is named with the
end of its log, at once, not after the deadline."""
from __future__ import annotations

import socket
import time

import pytest
from greenlight_master import lifecycle

from tests.world import World


@pytest.mark.parametrize("workers, cause", [
    (1, "Address already in use"),   # the web port is taken
    (0, "[workers] count = 0 and no [[workers.remote]]: no worker would ever build"),  # config
])
def test_a_master_that_cannot_start_says_why_at_once(tmp_path, monkeypatch, workers, cause):
    world = World(tmp_path / "world", workers=workers)
    basedir = lifecycle.master_basedir(world.settings)
    world._seed_master_db(world.settings)   # the upgraded template: no upgrade-master here
    lifecycle.ensure_master(world.settings, basedir, lifecycle.Report())
    monkeypatch.setenv("START_TIMEOUT", "600")
    with socket.socket() as taken:   # the master's web port, already in use
        taken.bind(("127.0.0.1", world.settings["master"]["web_port"]))
        taken.listen()
        started = time.monotonic()
        try:
            with pytest.raises(RuntimeError) as failure:
                lifecycle.start_master(world.settings, basedir, lifecycle.Report())
        finally:
            lifecycle.stop_pidfiles([basedir / "twistd.pid"])
    message = str(failure.value)
    assert message.startswith("the Buildbot master failed (BuildMaster startup failed); the end "
                              f"of {basedir / 'twistd.log'}:"), message
    assert cause in message
    assert time.monotonic() - started < 300   # the failure, not the 600-s deadline
    assert not lifecycle._pid_alive(basedir / "twistd.pid")


def test_a_stale_pid_file_does_not_fail_the_start(tmp_path):
    """A master killed with SIGKILL leaves its pid file: the next start must not read that
    dead pid as the new master stopping."""
    world = World(tmp_path / "world", workers=1)
    basedir = lifecycle.master_basedir(world.settings)
    world._seed_master_db(world.settings)
    lifecycle.ensure_master(world.settings, basedir, lifecycle.Report())
    (basedir / "twistd.pid").write_text("999999\n")   # no such process
    try:
        lifecycle.start_master(world.settings, basedir, lifecycle.Report())
        assert lifecycle._pid_alive(basedir / "twistd.pid")
        assert lifecycle.MASTER_RUNNING in (basedir / "twistd.log").read_text()
    finally:
        lifecycle.stop_pidfiles([basedir / "twistd.pid"])
