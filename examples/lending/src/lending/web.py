"""The HTTP face of the service (Flask)."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lending import telemetry
from lending.catalog import Catalog, LendingError


def create_app(catalog: Catalog | None = None) -> Flask:
    app = Flask("lending")
    shelf = catalog or Catalog()
    release = os.environ.get("LENDING_RELEASE", "dev")

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unknown"
        if route != "/metrics":
            telemetry.HTTP_REQUESTS.labels(route).inc()
            telemetry.RESPONSE_SECONDS.observe(time.perf_counter() - g.started)
            if response.status_code >= 500:
                telemetry.HTTP_FAILURES.labels(route).inc()
        return response

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", release=release)

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(telemetry.REGISTRY), content_type=CONTENT_TYPE_LATEST)

    @app.get("/books/<book>")
    def book(book: str):
        try:
            return jsonify(book=book, available=shelf.available(book))
        except LendingError as exc:
            return jsonify(error=str(exc)), 404

    @app.post("/loans")
    def borrow():
        member, book = request.form.get("member", ""), request.form.get("book", "")
        try:
            shelf.borrow(member, book)
        except LendingError as exc:
            telemetry.REFUSALS.inc()
            return jsonify(error=str(exc)), 409
        telemetry.LOANS.inc()
        return jsonify(member=member, book=book), 201

    @app.post("/returns")
    def give_back():
        member, book = request.form.get("member", ""), request.form.get("book", "")
        try:
            shelf.give_back(member, book)
        except LendingError as exc:
            return jsonify(error=str(exc)), 409
        return jsonify(member=member, book=book)

    return app
