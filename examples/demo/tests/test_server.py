from app import server


def test_health():
    assert server.handle("/health", {}) == (200, "text/plain", "ok\n")


def test_register_login_purchase_flow():
    registry = server.metrics.REGISTRY
    revenue = registry.get_sample_value("demo_revenue_total") or 0.0
    squared = registry.get_sample_value("demo_revenue_squared_total") or 0.0
    assert server.handle("/register", {"user": "dora"})[0] == 201
    assert server.handle("/login", {"user": "dora"})[0] == 200
    status, _, body = server.handle("/purchase", {"user": "dora", "amount": "3"})
    assert status == 200 and "3.00" in body
    assert registry.get_sample_value("demo_revenue_total") == revenue + 3
    assert registry.get_sample_value("demo_revenue_squared_total") == squared + 9


def test_home_escapes_user():
    body = server.handle("/", {"user": "<b>x</b>"})[2]
    assert "&lt;b&gt;" in body


def test_metrics_exposes_business_counters():
    body = server.handle("/metrics", {})[2]
    assert "demo_logins_total" in body and "demo_revenue_total" in body


def test_unknown_path():
    assert server.handle("/nope", {})[0] == 404
