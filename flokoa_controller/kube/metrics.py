"""REST client metrics, named and labelled like client-go's (default prometheus registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "REQUEST_DURATION_BUCKETS",
    "TRANSPORT_ERROR_CODE",
    "rest_client_request_duration_seconds",
    "rest_client_requests_total",
]

REQUEST_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""client-go's latency buckets for `rest_client_request_duration_seconds`."""

TRANSPORT_ERROR_CODE = "<error>"
"""The `code` label of a request that got no HTTP response (client-go's value)."""

rest_client_requests_total = Counter(
    "rest_client_requests_total",
    "Number of HTTP requests, partitioned by status code, method, and host.",
    ["code", "method", "host"],
)
"""Every HTTP request sent (each retry counts), by status code, method and host."""

rest_client_request_duration_seconds = Histogram(
    "rest_client_request_duration_seconds",
    "Request latency in seconds. Broken down by verb, and host.",
    ["verb", "host"],
    buckets=REQUEST_DURATION_BUCKETS,
)
"""Latency of each HTTP request until its response was read (watches: until the headers)."""
