"""Prometheus metrics of the service: what Greenlight's canary judge compares."""
from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter("lending_http_requests", "HTTP requests answered", ["route"],
                        registry=REGISTRY)
HTTP_FAILURES = Counter("lending_http_failures", "HTTP 5xx answers", ["route"],
                        registry=REGISTRY)
LOANS = Counter("lending_loans", "Books lent", registry=REGISTRY)
REFUSALS = Counter("lending_refusals", "Loans refused by the rules", registry=REGISTRY)
RESPONSE_SECONDS = Histogram("lending_response_seconds", "Time to answer", registry=REGISTRY,
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
