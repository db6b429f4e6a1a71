"""The local status endpoint: ``GET /metrics`` (prometheus_client's exposition of the daemon's
registry), ``GET /healthz`` (JSON; 200 while the daemon's loop is alive, 503 once it has
stalled) and ``GET /latency`` (JSON: the newest EIP-712 signed RTT measurement this site holds
per peer, as challenger or responder, for anyone to relay to the selector). One small WSGI app
on wsgiref's threading server, the one prometheus_client's own ``start_http_server`` uses.
Binds loopback by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from attestor.latency import split_endpoint

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Health = Callable[[], tuple[bool, dict[str, Any]]]
Latency = Callable[[], list[dict[str, Any]]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes are not news


def _reply(
    start_response: StartResponse, status: str, content_type: str, body: bytes
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def status_app(
    registry: CollectorRegistry, health: Health, latency: Latency | None = None
) -> WSGIApplication:
    """``/metrics`` from ``registry``, ``/healthz`` from ``health``, ``/latency`` from
    ``latency``; 404 elsewhere."""
    metrics: WSGIApplication = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            ok, body = health()
            status = "200 OK" if ok else "503 Service Unavailable"
            return _reply(start_response, status, "application/json", json.dumps(body).encode())
        if path == "/latency" and latency is not None:
            doc = json.dumps({"measurements": latency()}).encode()
            return _reply(start_response, "200 OK", "application/json", doc)
        return _reply(
            start_response,
            "404 Not Found",
            "text/plain",
            b"not found: try /metrics, /healthz or /latency\n",
        )

    return app


class StatusServer:
    """Serves metrics and health in a background thread. Binds at construction (so a taken port
    fails the start-up at once); serves from ``start``, which is given the health source."""

    def __init__(
        self, listen: str, registry: CollectorRegistry, latency: Latency | None = None
    ) -> None:
        self.registry = registry
        self.latency = latency
        self._httpd = ThreadingWSGIServer(split_endpoint(listen), _QuietHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="status-http"
        )
        self._thread.daemon = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self, health: Health) -> StatusServer:
        self._httpd.set_app(status_app(self.registry, health, self.latency))
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
