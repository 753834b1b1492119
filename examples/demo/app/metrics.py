"""Prometheus metrics of the demo app: system metrics and business metrics."""
from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter("demo_requests", "HTTP requests served", ["endpoint"], registry=REGISTRY)
ERRORS = Counter("demo_errors", "HTTP 5xx responses", ["endpoint"], registry=REGISTRY)
LATENCY = Histogram("demo_request_duration_seconds", "Request latency", ["endpoint"],
                    registry=REGISTRY,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
LOGINS = Counter("demo_logins", "Successful logins", registry=REGISTRY)
REGISTRATIONS = Counter("demo_registrations", "New registrations", registry=REGISTRY)
REVENUE = Counter("demo_revenue", "Revenue from purchases", registry=REGISTRY)
# Sum of the squared purchase amounts: with it a canary judge knows how much revenue per request
# varies (compound Poisson), not only its mean.
REVENUE_SQUARED = Counter("demo_revenue_squared", "Sum of squared purchase amounts",
                          registry=REGISTRY)
