"""The benchmarks' lean HTTP client against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from devnet.leanhttp import LeanClient
from devnet.ports import free_port

KEEP_ALIVE = 1  # the server's keep-alive timeout, seconds


class App:
    """Echoes POST bodies, and records the client port of every request."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.ports.append(scope["client"][1])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = [(b"content-type", b"application/json")]
        if path == "/chunked":  # no length given: uvicorn sends it chunked
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"[1,", "more_body": True})
            await send({"type": "http.response.body", "body": b"2]"})
            return
        out = body if scope["method"] == "POST" else b'{"ok":true}'
        headers.append((b"content-length", b"%d" % len(out)))
        if path == "/close":
            headers.append((b"connection", b"close"))
        status = 201 if path == "/created" else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, App]]:
    app = App()
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(timeout=10)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_sequential_requests_share_one_keep_alive_connection(server: tuple[str, App]) -> None:
    url, app = server

    async def go() -> list[tuple[int, bytes]]:
        client = LeanClient(url)
        out = [await client.post("/echo", b'{"n":%d}' % i) for i in range(20)]
        out.append(await client.post("/created", b"{}"))
        await client.close()
        return out

    before = len(app.ports)
    answers = run(go())
    assert answers[:20] == [(200, b'{"n":%d}' % i) for i in range(20)]
    assert answers[20] == (201, b"{}")
    assert len(set(app.ports[before:])) == 1, f"ports used: {sorted(set(app.ports[before:]))}"


def test_concurrent_requests_each_get_their_own_answer(server: tuple[str, App]) -> None:
    url, app = server

    async def go() -> list[tuple[int, bytes]]:
        client = LeanClient(url)
        first = await asyncio.gather(*(client.post("/echo", b"[%d]" % i) for i in range(10)))
        again = await asyncio.gather(*(client.post("/echo", b"[%d]" % i) for i in range(10)))
        await client.close()
        return first + again

    before = len(app.ports)
    answers = run(go())
    assert answers == [(200, b"[%d]" % i) for i in range(10)] * 2
    ports = app.ports[before:]
    # the second round finds the first round's connections idle: no new ones
    assert len(set(ports)) <= 10 and set(ports[10:]) <= set(ports[:10]), f"ports: {ports}"


def test_a_connection_idle_past_the_limit_is_not_reused(server: tuple[str, App]) -> None:
    url, app = server

    async def go(idle_limit: float, pause: float) -> tuple[int, bytes]:
        client = LeanClient(url, idle_limit=idle_limit)
        assert (await client.get("/"))[0] == 200
        await asyncio.sleep(pause)
        try:
            return await client.get("/")
        finally:
            await client.close()

    def ports_used(idle_limit: float, pause: float) -> int:
        before = len(app.ports)
        assert run(go(idle_limit, pause)) == (200, b'{"ok":true}')
        return len(set(app.ports[before:]))

    # idle for less than the server keeps it open: reused, unless idle past the client's limit
    assert ports_used(idle_limit=10, pause=KEEP_ALIVE / 4) == 1
    assert ports_used(idle_limit=KEEP_ALIVE / 10, pause=KEEP_ALIVE / 4) == 2
    # idle past the server's keep-alive: the server closed it, and the client saw that
    assert ports_used(idle_limit=10, pause=KEEP_ALIVE + 0.6) == 2


def test_connection_close_is_honoured(server: tuple[str, App]) -> None:
    url, app = server

    async def go() -> list[tuple[int, bytes]]:
        client = LeanClient(url)
        out = [await client.post("/close", b"1"), await client.post("/close", b"2")]
        await client.close()
        return out

    before = len(app.ports)
    assert run(go()) == [(200, b"1"), (200, b"2")]
    assert len(set(app.ports[before:])) == 2


def test_a_chunked_answer_is_refused_by_name(server: tuple[str, App]) -> None:
    url, _ = server

    async def go() -> None:
        client = LeanClient(url)
        try:
            await client.get("/chunked")
        finally:
            await client.close()

    with pytest.raises(ConnectionError, match="Transfer-Encoding b'chunked'"):
        run(go())


def test_nothing_listening_is_an_os_error() -> None:
    with socket.socket() as s:  # a port bound and closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        await LeanClient(f"http://127.0.0.1:{port}", timeout=2).get("/")

    with pytest.raises(OSError):
        run(go())
    with pytest.raises(ValueError, match="http://host:port"):
        LeanClient("https://127.0.0.1:1")
