"""Prometheus metrics: requests by route and status, latency, cache hits and misses, the block.

Each app has its own registry (tests build several apps in one process). With several uvicorn
workers each process counts its own requests; scrape with one worker, or sum per instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "<unmatched>"


class ApiMetrics:
    """The API's metric families, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "api_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "time from request to last response byte, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "api_cache_lookups",
            "response cache lookups by endpoint and outcome (hit, miss)",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.block = Gauge("api_chain_block", "latest block the API has seen", registry=r)
        self.reachable = Gauge(
            "api_chain_reachable", "1 if the last poll of the chain succeeded", registry=r
        )
        self.polls = Counter(
            "api_chain_polls",
            "polls of the latest block by outcome (ok, error)",
            ["outcome"],
            registry=r,
        )
        self._children: dict[tuple[str, ...], MetricWrapperBase] = {}

    def _child(self, family: Counter | Histogram, *labels: str) -> MetricWrapperBase:
        key = (family._name, *labels)
        child = self._children.get(key)
        if child is None:  # labels() takes a lock and builds a tuple: do it once per label set
            child = self._children[key] = family.labels(*labels)
        return child

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, method, str(status)).inc()  # type: ignore[attr-defined]
        self._child(self.latency, route).observe(seconds)  # type: ignore[attr-defined]

    def cache_lookup(self, endpoint: str, hit: bool) -> None:
        self._child(self.cache, endpoint, "hit" if hit else "miss").inc()  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering): times each HTTP request and
    counts it under its route template, so ids in paths do not multiply the series."""

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self.clock()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            self.metrics.observe_request(
                str(template) if template else UNMATCHED,
                str(scope["method"]),
                status,
                self.clock() - start,
            )
