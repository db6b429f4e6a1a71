"""A peer's snapshot is fetched whole, however it arrives, a too large one is refused, one
under another log revision than the committee's is refused, and a peer whose bytes break the
parser is refused while the next peer is still asked."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from aiohttp import web

from devnet.etcdcluster import start_cluster
from devnet.loggen import generate
from validator.engine import Engine
from validator.node import catchup
from validator.node.catchup import SnapshotRefused, fetch, verify
from validator.node.etcd import EtcdClient
from validator.node.inputlog import roots_prefix

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
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

    async for url in _server({"/snapshot": snapshot}):
        yield url


async def _server(routes: dict[str, Handler]) -> AsyncIterator[str]:
    """An HTTP server on loopback serving ``routes`` (GET), while the caller iterates."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
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


def test_a_vouched_snapshot_with_another_log_revision_is_refused(tmp_path: Path) -> None:
    """A peer serving a genuine snapshot (root, chain head and sequence all the committee's)
    under another log revision in its header: the node would go on from the wrong place in the
    log, skipping chunks or applying some twice. The committee's root record now carries the
    revision, and it must match."""
    engine = Engine()
    for seq, msg in enumerate(generate(300, 3), 1):
        engine.apply_at(seq, msg)
    body = engine.snapshot()
    chain = bytes(range(32))
    committee = ["ams1", "fra1", "sin1"]
    record = {
        "root": hashlib.sha256(body).hexdigest(),
        "first": 1,
        "last": engine.seq,
        "chain": chain.hex(),
        "revision": 1234,
    }

    def raw(revision: int) -> bytes:
        header = {"chain": chain.hex(), "ordinal": 200, "revision": revision, "seq": engine.seq}
        return json.dumps(header).encode() + b"\n" + body

    async def scenario() -> tuple[int, str]:
        client = EtcdClient(cluster.endpoints)
        for member in committee[:2]:
            await client.put(roots_prefix(200) + member.encode(), json.dumps(record).encode())
        good = await verify(raw(1234), client, committee, "peer")
        with pytest.raises(SnapshotRefused) as refused:
            await verify(raw(1240), client, committee, "peer")
        await client.aclose()
        return good.at.revision, str(refused.value)

    with start_cluster(["s0", "s1", "s2"], tmp_path / "etcd") as cluster:
        revision, why = asyncio.run(scenario())
    assert revision == 1234
    assert why == "chunk 200: log revision 1240 is not the committee's 1234"


def test_a_header_nested_past_the_parser_is_refused() -> None:
    with pytest.raises(SnapshotRefused, match="RecursionError"):
        catchup.parse(b"[" * 100_000 + b"\nbody")


def test_a_peer_whose_bytes_break_the_parser_is_refused_and_the_next_one_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by review: a first peer answering with a header of 100,000 nested brackets raised
    RecursionError out of ``transfer``, which ended the node's follower for good (the next,
    honest peer was never asked)."""
    asked: list[str] = []

    async def scenario() -> list[str]:
        async def evil(_: web.Request) -> web.Response:
            asked.append("evil")
            return web.Response(body=b"[" * 100_000 + b"\nx")

        async def broken(_: web.Request) -> web.Response:
            asked.append("broken")
            return web.Response(body=b"not a snapshot")

        async def honest(_: web.Request) -> web.Response:
            asked.append("honest")
            return web.Response(status=503)

        routes = {"/evil/snapshot": evil, "/broken/snapshot": broken, "/honest/snapshot": honest}

        async def boom(raw: bytes, *args: object) -> object:
            if raw.startswith(b"not"):
                raise LookupError("a failure nobody planned for")
            return await real_verify(raw, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(catchup, "verify", boom)
        async for base in _server(routes):
            peers = [f"{base}/evil", f"{base}/broken", f"{base}/honest"]
            got, refused = await catchup.transfer(peers, cast(EtcdClient, None), ["a"], 0)
            assert got is None
            return refused
        raise AssertionError("no server")

    real_verify = catchup.verify
    refused = asyncio.run(scenario())
    assert asked == ["evil", "broken", "honest"]
    assert "RecursionError" in refused[0]
    assert "unusable (LookupError" in refused[1]
    assert refused[2].endswith("HTTP 503")
