"""Prometheus metrics, in a registry of this app's own (several apps may live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Label values must be bounded: HTTP lets a client invent any method name, and each new label
# value is a new time series kept for the life of the process.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, in_flight_inference: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "facegate_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "facegate_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        inference = Gauge(
            "facegate_inference_in_flight",
            "Requests running or waiting in the inference pool",
            registry=self.registry,
        )
        inference.set_function(in_flight_inference)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """``route`` must be a route template or ``unmatched``, never a raw path."""
        labels = (method if method in _METHODS else "other", route, str(status))
        self._requests.labels(*labels).inc()
        self._latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
