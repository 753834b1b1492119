"""The demo traffic is calm between deploys and full while one runs (the deploy lock)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from greenlight.deploy import demo_traffic
from greenlight.deploy.lock import DeployLock
from greenlight.errors import UsageError

from tests.conftest import wait_for


class _Counting(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Counting,), {"hits": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def test_lock_held_reads_the_kernels_lock_table(tmp_path):
    lock_file = tmp_path / "deploy.lock"
    assert demo_traffic.lock_held(lock_file) is False  # no lock file yet
    with DeployLock(str(lock_file)):
        assert demo_traffic.lock_held(lock_file) is True
    assert demo_traffic.lock_held(lock_file) is False
    assert demo_traffic.lock_held(lock_file, proc_locks=str(tmp_path / "none")) is None


def test_full_rate_while_a_deploy_holds_the_lock_then_idle(tmp_path, server):
    httpd, handler = server
    lock_file = str(tmp_path / "deploy.lock")
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    stop, segments = threading.Event(), []
    lock = DeployLock(lock_file)
    lock.acquire()
    runner = threading.Thread(target=demo_traffic.run, kwargs=dict(
        urls=[url], rate=50, idle_rate=0, duration_s=120, lock_file=lock_file, stop=stop,
        poll=0.05, segments=segments))
    runner.start()
    try:
        wait_for(lambda: handler.hits >= 5, 60, "traffic while the lock is held")
        lock.release()
        wait_for(lambda: len(segments) >= 1, 60, "the deploy segment to end")
    finally:
        lock.release()
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    assert segments[0][0] == 50 and segments[0][1] >= 5
    # after the deploy: idle rate 0 sends nothing at all
    assert [s for s in segments[1:] if s[1]] == [] and all(s[0] == 0 for s in segments[1:])


def test_unknown_lock_state_means_full_rate_and_bad_urls_are_refused():
    assert demo_traffic.rate_now(40, 2, None) == 40
    assert demo_traffic.rate_now(40, 2, True) == 40
    assert demo_traffic.rate_now(40, 2, False) == 2
    with pytest.raises(UsageError, match="loopback"):
        demo_traffic.run(["http://example.com:80"], 1, 1, 1, "/nonexistent/lock")


def test_a_deploy_segment_cut_short_before_its_first_request_does_not_stop_the_traffic(server):
    """The lock held for a moment, again and again: each deploy segment ends before its first
    request is answered (0 sent); the generator goes on (it used to stop for good)."""
    httpd, handler = server
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    flips = iter([True, False] * 10)   # each segment reads the state, then finds it changed
    stop, segments = threading.Event(), []
    runner = threading.Thread(target=demo_traffic.run, kwargs=dict(
        urls=[url], rate=50, idle_rate=20, duration_s=120, lock_file="unused", stop=stop,
        held=lambda: next(flips, False), poll=0.01, segments=segments))
    runner.start()
    try:
        wait_for(lambda: len(segments) >= 10, 60, "ten short deploy segments")
        after = handler.hits
        wait_for(lambda: handler.hits >= after + 5, 60, "idle traffic after them")
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    assert [rate for rate, _ in segments[:11]] == [50] * 10 + [20]
    assert any(sent == 0 for _, sent in segments[:10])   # the case that used to stop it


def test_only_a_generator_that_ended_by_itself_with_nothing_sent_gave_up():
    assert demo_traffic.generator_gave_up(ended_itself=True, sent=0, rate=25)
    assert not demo_traffic.generator_gave_up(ended_itself=False, sent=0, rate=25)
    assert not demo_traffic.generator_gave_up(ended_itself=True, sent=3, rate=25)
    assert not demo_traffic.generator_gave_up(ended_itself=True, sent=0, rate=0)
