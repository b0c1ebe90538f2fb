"""Prometheus metrics common to all processes.

Metrics are module-level singletons on the default registry (one app per process);
service-specific metrics live next to the code that updates them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "vibevoice_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "vibevoice_http_request_duration_seconds",
    "Time from request start to the end of the response body",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
HTTP_IN_FLIGHT = Gauge("vibevoice_http_in_flight_requests", "Requests being served", ["service"])
HTTP_REJECTED = Counter(
    "vibevoice_http_rejected_total", "Requests refused before reaching a handler", ["service", "reason"]
)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
