"""The local status endpoint: ``GET /metrics`` (Prometheus text) and ``GET /healthz`` (JSON;
200 while the daemon's loop is alive, 503 once it has stalled). Binds loopback by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from attestor.latency import split_endpoint
from attestor.metrics import Metrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class StatusServer:
    """Serves metrics and health in a background thread."""

    def __init__(
        self, listen: str, metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]
    ) -> None:
        self.metrics = metrics
        self.health = health
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._reply(200, PROMETHEUS_TEXT, server.metrics.render().encode())
                elif self.path == "/healthz":
                    ok, body = server.health()
                    self._reply(200 if ok else 503, "application/json", json.dumps(body).encode())
                else:
                    self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _reply(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes are not news

        self._httpd = ThreadingHTTPServer(split_endpoint(listen), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="status-http"
        )
        self._thread.daemon = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
