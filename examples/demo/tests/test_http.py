"""The real HTTP server: status codes, metrics and the never-crash rule, over a socket."""
import threading
import time
import urllib.error
import urllib.request

import pytest

from app import metrics, server


@pytest.fixture(scope="module")
def base_url():
    httpd = server.make_server(["--host", "127.0.0.1", "--port", "0"])
    # Join handler threads on close: they update metrics after answering, and coverage must
    # see those lines run before the process ends.
    httpd.daemon_threads = False
    httpd.block_on_close = True
    # (a short poll: shutdown() waits for the loop's next look, 0.5 s by default)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_and_metrics(base_url):
    assert get(base_url + "/health") == (200, "ok\n")
    deadline = time.monotonic() + 5  # the handler counts a request just after answering it
    while True:
        status, body = get(base_url + "/metrics")
        if 'demo_requests_total{endpoint="/health"}' in body or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert status == 200 and 'demo_requests_total{endpoint="/health"}' in body


def test_client_errors_are_not_server_errors(base_url):
    assert get(base_url + "/login?user=nobody-here")[0] == 401
    get(base_url + "/register?user=http-buyer")
    assert get(base_url + "/purchase?user=http-buyer&amount=abc")[0] == 400
    assert get(base_url + "/nope")[0] == 404


def test_a_bug_answers_500_and_counts_an_error(base_url, monkeypatch):
    def broken(path, params):
        raise RuntimeError("bug")

    monkeypatch.setattr(server, "handle", broken)
    before = metrics.ERRORS.labels("/login")._value.get()
    assert get(base_url + "/login?user=x") == (500, "internal error\n")
    deadline = time.monotonic() + 5  # the handler counts the error just after answering
    while metrics.ERRORS.labels("/login")._value.get() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert metrics.ERRORS.labels("/login")._value.get() == before + 1
