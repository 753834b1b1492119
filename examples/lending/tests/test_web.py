from prometheus_client.parser import text_string_to_metric_families

from lending.web import create_app


def _client():
    return create_app().test_client()


def _samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_names_the_release():
    response = _client().get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_a_loan_is_counted_and_a_refusal_is_not():
    client = _client()
    before = _samples(client).get(("lending_loans_total", ()), 0)
    assert client.post("/loans", data={"member": "ann", "book": "ulysses"}).status_code == 201
    assert client.post("/loans", data={"member": "bob", "book": "ulysses"}).status_code == 409
    assert client.get("/books/ulysses").get_json()["available"] == 0
    assert client.post("/returns", data={"member": "ann", "book": "ulysses"}).status_code == 200
    assert client.post("/returns", data={"member": "ann", "book": "ulysses"}).status_code == 409
    assert client.get("/books/nope").status_code == 404
    samples = _samples(client)
    assert samples[("lending_loans_total", ())] == before + 1
    assert samples[("lending_http_requests_total", (("route", "/loans"),))] >= 2


def test_server_errors_are_counted_as_failures():
    app = create_app()

    @app.get("/boom")
    def boom():
        return "broken", 500

    client = app.test_client()
    client.get("/boom")
    assert _samples(client)[("lending_http_failures_total", (("route", "/boom"),))] == 1


def test_serve_runs_the_app_threaded_on_the_given_address(monkeypatch):
    from lending import serve

    calls = []
    monkeypatch.setattr(serve, "run_simple", lambda *a, **kw: calls.append((a, kw)))
    serve.main(["--host", "127.0.0.2", "--port", "8099"])
    (host, port, app), options = calls[0]
    assert (host, port, options) == ("127.0.0.2", 8099, {"threaded": True})
    assert app.name == "lending"
