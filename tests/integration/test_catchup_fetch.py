"""A peer's snapshot is fetched whole, however it arrives, and a too large one is refused."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from validator.node import catchup
from validator.node.catchup import SnapshotRefused, fetch

BODY = bytes(range(256)) * (5 * 4096)  # 5 MiB


async def _serve(chunked: bool) -> AsyncIterator[str]:
    async def snapshot(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=BODY)
        reply = web.StreamResponse()
        await reply.prepare(request)
        for i in range(0, len(BODY), 64 * 1024):  # in pieces, a pause between some
            await reply.write(BODY[i : i + 64 * 1024])
            if i % (1 << 20) == 0:
                await asyncio.sleep(0.01)
        await reply.write_eof()
        return reply

    app = web.Application()
    app.router.add_get("/snapshot", snapshot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_snapshot_of_megabytes_is_fetched_whole(chunked: bool) -> None:
    async def scenario() -> bytes:
        async for peer in _serve(chunked):
            async with aiohttp.ClientSession() as session:
                return await fetch(session, peer)
        raise AssertionError("no server")

    got = asyncio.run(scenario())
    assert len(got) == len(BODY)
    assert hashlib.sha256(got).digest() == hashlib.sha256(BODY).digest()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_snapshot_over_the_limit_is_refused(
    chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catchup, "MAX_SNAPSHOT_BYTES", len(BODY) - 1)

    async def scenario() -> None:
        async for peer in _serve(chunked):
            async with aiohttp.ClientSession() as session:
                await fetch(session, peer)

    with pytest.raises(SnapshotRefused, match=f"larger than {len(BODY) - 1} bytes"):
        asyncio.run(scenario())
