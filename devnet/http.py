"""The harness's blocking HTTP client (``requests``): JSON in, JSON out, and raw JSON-RPC.

For tools, tests, the drill and the benchmarks; asyncio code uses aiohttp and chain clients use
web3's own transports. Every failure to get an answer (refused, reset, timed out) raises a
``requests.RequestException``, which is an ``OSError``, so callers catch ``OSError``.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from devnet.errors import ToolchainError

__all__ = ["get_json", "http_json", "post_json", "rpc_call"]

_JSON = {"content-type": "application/json"}


def _send(url: str, body: Any, timeout: float) -> requests.Response:
    """One request on a connection of its own (as ``urllib`` made them: a killed server is
    never behind a pooled connection). The harness talks to loopback, so no proxy or
    ``.netrc`` from the environment applies; not reading them saves ~40% of the client's CPU
    per request, which the drill and the fault tests spend on the cores their servers use."""
    with requests.Session() as session:
        session.trust_env = False
        if body is None:
            return session.get(url, headers=_JSON, timeout=timeout)
        return session.post(url, data=json.dumps(body), headers=_JSON, timeout=timeout)


def http_json(url: str, body: Any = None, timeout: float = 2.0) -> tuple[int, Any]:
    """GET ``url`` (or POST ``body`` as JSON): (status, decoded JSON body) whatever the status,
    ``None`` for an empty body."""
    response = _send(url, body, timeout)
    return response.status_code, json.loads(response.content or b"null")


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url``: its decoded JSON body; raises ``requests.HTTPError`` unless 2xx."""
    response = _send(url, None, timeout)
    response.raise_for_status()
    return json.loads(response.content)


def post_json(url: str, body: Any, timeout: float = 2.0) -> Any:
    """POST ``body`` as JSON: the decoded JSON answer; raises ``requests.HTTPError`` unless 2xx."""
    response = _send(url, body, timeout)
    response.raise_for_status()
    return json.loads(response.content)


def rpc_call(
    url: str, method: str, params: list[object] | None = None, timeout: float = 2.0
) -> object:
    """One raw JSON-RPC call (used before web3 is set up, e.g. to wait for a chain)."""
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    reply = post_json(url, request, timeout)
    if "error" in reply:
        raise ToolchainError(f"{method} failed: {reply['error']}")
    return reply["result"]
