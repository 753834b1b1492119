"""HTTP front of the demo shop: ``python -m app.server --host 127.0.0.1 --port 8001``."""
from __future__ import annotations

import argparse
import html
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import experiments, metrics
from app.logic import InvalidAmount, Shop, UnknownUser, normalize_user

SHOP = Shop()
ENDPOINTS = {"/", "/health", "/login", "/register", "/purchase", "/metrics"}
# The feature shipped dark behind the experiment DemoSignup, per branch.
SIGNUP = {
    "control": '<p class="signup" data-branch="control"><a href="/register">Register</a></p>',
    "enhanced": ('<div class="signup-banner" data-branch="enhanced"><strong>New:</strong> '
                 'sign up in one step and get free shipping on your first order. '
                 '<a href="/register">Join now</a></div>'),
}
WELCOME = {"enhanced": "free shipping on your first order is waiting in your basket\n"}


def experiment_user(user: str) -> str:
    """The id experiments know a user by (the shop's normalized name; '' for guests)."""
    try:
        return normalize_user(user)
    except UnknownUser:
        return ""


def home_page(user: str, branch: str) -> str:
    name = html.escape(user or "guest")
    signup = SIGNUP.get(branch, SIGNUP["control"])
    return f"<h1>Demo shop</h1><p>Hello, {name}.</p>{signup}\n"


def handle(path: str, params: dict[str, str]) -> tuple[int, str, str]:
    """Route one request to the shop; returns (status, content type, body)."""
    user = params.get("user", "")
    if path == "/health":
        return 200, "text/plain", "ok\n"
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(metrics.REGISTRY).decode()
    if path == "/register":
        created = SHOP.register(user)
        branch = experiments.branch_for(experiment_user(user))  # the signup is an exposure
        if created:
            metrics.REGISTRATIONS.inc()
            experiments.record(experiment_user(user), "registration")
        return (201 if created else 200), "text/plain", "registered\n" + WELCOME.get(branch, "")
    if path == "/login":
        SHOP.login(user)
        metrics.LOGINS.inc()
        platform = params.get("platform") or experiments.usual_platform(experiment_user(user))
        experiments.record(experiment_user(user), "login", platform=platform)
        return 200, "text/plain", "welcome\n"
    if path == "/purchase":
        amount = SHOP.purchase(user, params.get("amount", ""))
        metrics.REVENUE.inc(amount)
        metrics.REVENUE_SQUARED.inc(amount * amount)
        experiments.record(experiment_user(user), "purchase", amount)
        return 200, "text/plain", f"charged {amount:.2f}\n"
    if path == "/":
        return 200, "text/html", home_page(user, experiments.branch_for(experiment_user(user)))
    return 404, "text/plain", "not found\n"


class Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        endpoint = url.path if url.path in ENDPOINTS else "other"
        started = time.perf_counter()
        try:
            status, ctype, body = handle(url.path, params)
        except UnknownUser:
            status, ctype, body = 401, "text/plain", "unknown user\n"
        except InvalidAmount as exc:
            status, ctype, body = 400, "text/plain", f"{exc}\n"
        except Exception:  # a bug: count it as an error, never crash the server
            status, ctype, body = 500, "text/plain", "internal error\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if endpoint != "/metrics":
            metrics.REQUESTS.labels(endpoint).inc()
            if status >= 500:
                metrics.ERRORS.labels(endpoint).inc()
            metrics.LATENCY.labels(endpoint).observe(time.perf_counter() - started)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args) -> None:  # quiet: traffic would flood the log
        pass


def make_server(argv: list[str] | None = None) -> ThreadingHTTPServer:
    """The server, bound; experiments start when $GREENLIGHT_EXPERIMENTS_DB names a store."""
    parser = argparse.ArgumentParser(description="Demo shop server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    experiments.start(registry=metrics.REGISTRY)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - serves until killed
    make_server(argv).serve_forever()


if __name__ == "__main__":
    main()
