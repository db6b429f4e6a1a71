"""A follower's own failures are never silent, and junk or a replaced member's leftovers in etcd
neither stop compaction nor turn off the state-root check (a real 3-member etcd cluster)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from devnet.etcdcluster import EtcdCluster, start_cluster
from validator.engine import Engine
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.follower import Boundary, Node
from validator.node.inputlog import (
    LOG,
    ROOTS,
    SNAP,
    chunk_key,
    counter_bytes,
    encode_chunk,
    floor_key,
    roots_prefix,
)
from validator.node.sequencer import Sequencer
from validator.node.settings import Settings
from validator.node.snapshot_files import Position

COMMITTEE = ["ams1", "fra1", "sin1"]


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(["s0", "s1", "s2"], tmp_path / "etcd") as c:
        yield c


def node(etcd: EtcdCluster, tmp_path: Path, name: str = "ams1", **values: object) -> Node:
    settings = Settings(
        node_id=name,
        etcd_endpoints=etcd.endpoints,
        committee=COMMITTEE,
        data_dir=tmp_path / name,
        **values,
    )
    return Node(settings, EtcdClient(etcd.endpoints))


def test_a_follower_that_fails_stops_serving_and_says_why(
    etcd: EtcdCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody expected ends the follower's task; the node used to go on answering
    reads (and /health 200) from the state it froze at."""
    n = node(etcd, tmp_path)

    async def broken(key: bytes, revision: int, value: bytes) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(n, "_apply", broken)

    async def scenario() -> None:
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        await writer.submit([b'{"type":"noop"}'])
        runner.cancel()
        task = n.start()
        deadline = time.monotonic() + 20
        while not task.done():
            assert time.monotonic() < deadline, "the follower did not meet the chunk"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0)  # the done callback runs

    asyncio.run(scenario())
    assert not n.serving
    assert n.diverged is not None and "the log follower failed" in n.diverged
    assert "engine bug" in n.diverged


def test_compaction_waits_for_a_new_member_beside_a_replaced_ones_position(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """dal1 was replaced by sin1: dal1's snapshot position is still there and sin1 has none yet.
    The committee's floor needs every member's position; the check used to ask only "not a
    strict subset" and then failed on the missing one (KeyError), ending the follower."""
    n = node(etcd, tmp_path)

    async def scenario() -> int:
        for name, value in (("ams1", b"200 400"), ("fra1", b"200 401"), ("dal1", b"200 402")):
            await n.etcd.put(SNAP + name.encode(), value)
        await n._compact()
        await n.etcd.put(SNAP + b"junk", b"not a position")
        await n._compact()
        return len(n._floors)

    assert asyncio.run(scenario()) == 0  # no floor taken, nothing deleted, no error
    assert n.deleted_below == 0


def test_junk_and_a_former_members_root_are_no_votes_and_the_check_goes_on(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """Beside two members agreeing with this node's root at a boundary: a value that is not
    JSON under a member's key, and a former member's (dal1) different root. The checker used to
    die on the first (divergence detection off for good, unobserved) and to count the second."""
    n = node(etcd, tmp_path)
    own = Boundary(50, 1, 100, b"\x11" * 32)
    later = Boundary(100, 101, 200, b"\x22" * 32)

    def root(b: Boundary, value: bytes) -> bytes:
        return json.dumps({"root": value.hex(), "first": b.first, "last": b.last}).encode()

    async def scenario() -> None:
        put = n.etcd.put
        await put(roots_prefix(50) + b"ams1", root(own, own.root))
        await put(roots_prefix(50) + b"fra1", root(own, own.root))
        await put(roots_prefix(50) + b"sin1", b"\xff not json")
        await put(roots_prefix(50) + b"dal1", root(own, b"\x33" * 32))
        for member in ("ams1", "fra1"):  # the next boundary: a majority against this node
            await put(roots_prefix(100) + member.encode(), root(later, b"\x44" * 32))
        await put(roots_prefix(100) + b"sin1", b"[" * 100_000)  # nested past the parser
        n.unchecked[:] = [own, later]
        checker = asyncio.create_task(n._check_roots_forever())
        deadline = time.monotonic() + 10
        while n.serving:
            assert time.monotonic() < deadline, "the second boundary was never checked"
            assert not checker.done(), checker
            await asyncio.sleep(0.05)
        checker.cancel()

    asyncio.run(scenario())
    assert n.diverged is not None and "DIVERGED at chunk 100" in n.diverged
    assert n.unchecked == []


def test_a_late_attempt_at_a_compacted_chunk_key_cannot_create_it_again(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """A chunk write can sit in a paused member and be proposed when it resumes (seen here on a
    real cluster: 1 write in 6 sent to a stopped follower landed after its client gave up). If
    compaction had deleted its key meanwhile, create-if-absent found no key and logged a chunk
    whose clients were told it never committed (its key was fenced) or that was logged already.
    Compaction now raises the gateway's floor past the keys before deleting them, and every
    chunk write is guarded by it; a restarted gateway's counter starts above it."""
    n = node(etcd, tmp_path)
    lines = [b'{"type":"noop"}']

    async def scenario() -> tuple[tuple[int, bytes | None], bytes, bytes, int]:
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        for _ in range(3):
            revision, _ = await writer.submit(lines)
        runner.cancel()
        for member in COMMITTEE:
            await n.etcd.put(SNAP + member.encode(), b"10 %d" % revision)
        n._floors.append((time.monotonic() - 3600, revision, 10))  # a floor old enough
        await n._compact()
        assert n.deleted_below == revision
        # the first write again, exactly as it was sent (its guard travels with it)
        late = await n.etcd.create_or_read(
            chunk_key("gw", 2),
            encode_chunk(lines),
            hedge_after=0.2,
            until=asyncio.get_running_loop().time() + 5,
            floor=(floor_key("gw"), counter_bytes(2)),
        )
        # a gateway restarted after its keys were deleted goes on above the floor
        again = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(again.run())
        await again.submit(lines)
        # one whose counter the floor overtook is refused by the guard, and skips past it
        await n.etcd.raise_to(floor_key("gw"), counter_bytes(9))
        await again.submit(lines)
        runner.cancel()
        kvs, _, _ = await n.etcd.get_range(LOG, prefix_end(LOG), keys_only=True)
        floor = await n.etcd.get(floor_key("gw"))
        assert floor is not None
        return late, kvs[0].key, kvs[-1].key, again.retries

    late, first, last, retries = asyncio.run(scenario())
    assert late == (0, None)
    assert first == chunk_key("gw", 4)
    assert last == chunk_key("gw", 10)
    assert retries == 1


def test_own_roots_go_once_every_snapshot_is_past_them_and_the_ledger_has_them(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """Roots were kept forever (about a kilobyte per boundary, every 50 chunks, until etcd's
    quota stopped every write). A node now deletes its own roots below the committee's lowest
    snapshot (a log_retention old), and, when it settles batches, only those the ledger has."""
    plain = node(etcd, tmp_path, "ams1")  # no settler
    settling = node(etcd, tmp_path, "fra1")
    settling.settled_through = 50  # the ledger has the batch at chunk 50 only

    async def scenario() -> list[bytes]:
        put = plain.etcd.put
        for k in (50, 100, 150, 200):
            for member in ("ams1", "fra1", "sin1"):
                revision = await put(roots_prefix(k) + member.encode(), b'{"root":"00"}')
        for member in COMMITTEE:
            await put(SNAP + member.encode(), b"160 %d" % revision)
        for n in (plain, settling):
            n._floors.append((time.monotonic() - 3600, revision, 160))  # a floor old enough
            await n._compact()
        kvs, _, _ = await plain.etcd.get_range(ROOTS, prefix_end(ROOTS), keys_only=True)
        return [kv.key[len(ROOTS) :] for kv in kvs]

    left = asyncio.run(scenario())
    assert left == [
        b"%020d/%s" % (k, m.encode())
        for k in (50, 100, 150, 200)
        for m in ("ams1", "fra1", "sin1")
        if not (m == "ams1" and k < 160) and not (m == "fra1" and k <= 50)
    ]


def test_a_floor_that_is_not_a_counter_refuses_writes_and_says_so(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """Bytes order is number order only for 20 digits: a floor of b"5" is above every counter,
    so every write failed its guard and the gateway looped on new keys without end. It now
    refuses (nothing was sent) and names the key and the value."""
    client = EtcdClient(etcd.endpoints)

    async def scenario() -> None:
        await client.put(floor_key("gw"), b"5")
        writer = Sequencer(client, "gw", deadline=1.0)
        runner = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.submit([b'{"type":"noop"}']), 10)
        finally:
            runner.cancel()

    with pytest.raises(EtcdError, match="holds b'5', not a 20-digit counter"):
        asyncio.run(scenario())


async def _diverge(n: Node) -> asyncio.Task[None]:
    """Run ``n`` (restored from a snapshot of its own at chunk 48) with two queued boundaries:
    25, agreed, and 50, whose root the two other members agree is not its own. It published
    roots at 25, 50 and 100."""
    for member in ("fra1", "sin1"):
        record = {"root": (b"\x22" * 32).hex(), "first": 1, "last": 100}
        await n.etcd.put(roots_prefix(50) + member.encode(), json.dumps(record).encode())
    for index in (25, 50, 100):
        await n.etcd.put(roots_prefix(index) + b"ams1", b"{}")
    n.store.save(Position(48, 7), 0, Engine().snapshot())  # a snapshot of its own to set aside
    agreed, refuted = Boundary(25, 1, 50, b"\x33" * 32), Boundary(50, 51, 100, b"\x11" * 32)
    n.unchecked.append(refuted)
    n.boundaries.put_nowait(agreed)
    n.boundaries.put_nowait(refuted)
    return n.start()


async def _serve_snapshot(at: Position, body: bytes) -> tuple[web.AppRunner, str]:
    header = {"chain": at.chain.hex(), "ordinal": at.ordinal, "revision": at.revision, "seq": 0}
    raw = json.dumps(header).encode() + b"\n" + body

    async def snapshot(request: web.Request) -> web.Response:
        return web.Response(body=raw)

    app = web.Application()
    app.router.add_get("/snapshot", snapshot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_a_diverged_node_sets_its_snapshots_aside_and_re_syncs_from_a_vouched_peer_snapshot(
    etcd: EtcdCluster, tmp_path: Path
) -> None:
    """The follower waits for the log when the checker finds the root at 50 differs: it stops
    serving, moves its snapshots aside with the reason, drops the boundary at 50 (the one at
    25 was agreed: kept), deletes its own roots from 50 on (a restart would sign them), takes a
    peer's snapshot at 100 the committee vouches for, publishes that position and serves."""
    body = Engine().snapshot()
    at = Position(100, 5)
    record = {
        "root": hashlib.sha256(body).hexdigest(),
        "chain": at.chain.hex(),
        "last": 0,
        "revision": at.revision,
    }

    async def scenario() -> tuple[Node, list[bytes], bytes | None, list[Boundary]]:
        runner, url = await _serve_snapshot(at, body)
        n = node(etcd, tmp_path, peers=[url])
        for member in ("fra1", "sin1"):
            await n.etcd.put(roots_prefix(100) + member.encode(), json.dumps(record).encode())
        task = await _diverge(n)
        deadline = time.monotonic() + 20
        while n.resyncs == 0 or not n.serving:
            assert time.monotonic() < deadline, (n.why_not_serving, n.resyncs)
            assert not task.done(), task
            await asyncio.sleep(0.05)
        task.cancel()
        await runner.cleanup()
        kvs, _, _ = await n.etcd.get_range(ROOTS, prefix_end(ROOTS), keys_only=True)
        snap = await n.etcd.get(SNAP + b"ams1")
        queued = [n.boundaries.get_nowait() for _ in range(n.boundaries.qsize())]
        return n, [kv.key for kv in kvs], None if snap is None else snap.value, queued

    n, roots, snap, queued = asyncio.run(scenario())
    assert (n.resyncs, n.generation) == (1, 1)
    assert (n.applied, n.revision) == (100, 5)
    assert snap == b"100 5"  # the taken position, for the committee's compaction
    assert [b.index for b in queued] == [25] and n.signable(queued[0])
    assert not n.signable(Boundary(50, 51, 100, b"\x11" * 32))  # generation 0, refuted
    assert [r for r in roots if r.endswith(b"/ams1")] == [roots_prefix(25) + b"ams1"]
    aside = list(tmp_path.glob("ams1/snapshots.diverged-*"))
    assert len(aside) == 1
    assert "DIVERGED at chunk 50" in (aside[0] / "WHY").read_text()
    assert [p.name for p in aside[0].glob("snap-*.bin")] == [f"snap-{48:020d}.bin"]
    assert [p.name for p in (tmp_path / "ams1" / "snapshots").iterdir()] == [f"snap-{100:020d}.bin"]


@pytest.mark.parametrize(
    ("resyncs", "peers"), [(0, ["http://127.0.0.1:9"]), (3, [])], ids=["none-left", "no-peers"]
)
def test_a_diverged_node_that_cannot_re_sync_stays_stopped_and_keeps_following(
    etcd: EtcdCluster, tmp_path: Path, resyncs: int, peers: list[str]
) -> None:
    """No re-sync left (divergence_resyncs = 0), or no peer to take a snapshot from: the node
    stops serving for good at the first divergence and sets nothing aside (a person looks at
    it); it goes on applying the log (its snapshot position must not hold back compaction)."""
    n = node(etcd, tmp_path, divergence_resyncs=resyncs, peers=peers)

    async def scenario() -> tuple[int, int]:
        task = await _diverge(n)
        deadline = time.monotonic() + 10
        while n.serving:
            assert time.monotonic() < deadline, "the divergence was never seen"
            await asyncio.sleep(0.05)
        before = n.applied
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        await writer.submit([b'{"type":"noop"}'])
        runner.cancel()
        while n.applied == before:
            assert time.monotonic() < deadline + 10, "the diverged node stopped following"
            assert not task.done(), task
            await asyncio.sleep(0.05)
        task.cancel()
        return before, n.applied

    before, after = asyncio.run(scenario())
    assert after == before + 1
    assert n.diverged is not None and "DIVERGED at chunk 50" in n.diverged
    assert n.divergence is None and n.resyncs == 0 and n.lagging is None
    assert list(tmp_path.glob("ams1/snapshots.diverged-*")) == []
    assert len(list((tmp_path / "ams1" / "snapshots").glob("snap-*.bin"))) == 1


def test_a_snapshot_the_disk_cannot_take_is_skipped_and_the_node_goes_on(
    etcd: EtcdCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: one snapshot write failing (disk full, EIO) ended the follower: the node
    applied no more chunks and its published position froze the committee's log compaction.
    The snapshot is only a shortcut; the chunk is applied; the next snapshot is tried later."""
    n = node(etcd, tmp_path, snapshot_every=2, batch_every=2)
    full = {"on": False}
    save = n.store.save_holding

    def save_holding(*args: object, **kwargs: object) -> object:
        if full["on"]:
            raise OSError(28, "No space left on device")
        return save(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(n.store, "save_holding", save_holding)

    async def scenario() -> tuple[int, int, bytes | None]:
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        task = n.start()

        async def chunks(count: int) -> None:
            for i in range(count):
                await writer.submit([json.dumps({"type": "noop", "i": i}).encode()])

        async def applied(ordinal: int) -> None:
            deadline = time.monotonic() + 20
            while n.applied < ordinal:
                assert time.monotonic() < deadline and not task.done(), (n.applied, task)
                await asyncio.sleep(0.05)

        await chunks(4)
        await applied(4)
        full["on"] = True
        await chunks(4)
        await applied(8)
        deadline = time.monotonic() + 10
        while n.snapshot_failures < 2:  # chunks 6 and 8 are snapshots: both refused
            assert time.monotonic() < deadline and not task.done(), task
            await asyncio.sleep(0.02)
        failures = n.snapshot_failures
        full["on"] = False
        await chunks(4)
        await applied(12)
        while n.published is None or n.published < 12:
            assert not task.done()
            await asyncio.sleep(0.05)
        kv = await n.etcd.get(SNAP + b"ams1")
        task.cancel()
        runner.cancel()
        return failures, n.applied, None if kv is None else kv.value

    failures, applied, published = asyncio.run(scenario())
    assert failures >= 2 and applied == 12 and n.serving  # (the one at 4 may come late)
    assert published is not None and published.startswith(b"12 ")
    # no settler runs here: the boundaries it would sign are not queued (they used to be, one
    # per batch_every chunks, for as long as the node ran)
    assert n.boundaries.qsize() == 0
