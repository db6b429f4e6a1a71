"""The log's write path against a real etcd: create-if-absent, retried writes logged once,
revision order, compressed chunks and positions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.http import post_json
from devnet.logdump import by_position, read_log
from validator.node.etcd import EtcdClient, b64, prefix_end, unb64
from validator.node.inputlog import ZSTD_MAGIC, chunk_key, encode_chunk
from validator.node.sequencer import Sequencer


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with start_cluster(["solo"], tmp_path_factory.mktemp("etcd")) as c:
        yield c


def test_create_tells_a_new_write_from_an_earlier_attempt_and_from_someone_elses(
    etcd: EtcdCluster,
) -> None:
    async def run() -> tuple[tuple[int, bool], ...]:
        client = EtcdClient(etcd.endpoints)
        try:
            first = await client.create(b"/t/create/a", b"mine")
            again = await client.create(b"/t/create/a", b"mine")
            other = await client.create(b"/t/create/a", b"theirs")
            return first, again, other
        finally:
            await client.aclose()

    first, again, other = asyncio.run(run())
    assert first[1] is True
    assert again == (first[0], True)  # found: the earlier attempt landed, same revision
    assert other == (first[0], False)
    assert not [c for c in read_log(etcd.endpoints[0]) if b"create" in c.key]  # not the log


def test_a_retried_chunk_write_is_logged_once_and_acknowledged_with_its_revision(
    etcd: EtcdCluster,
) -> None:
    """The write landed but its answer was lost: the retry on the same key must find it."""

    async def run() -> tuple[int, int, int]:
        client = EtcdClient(etcd.endpoints)
        seq = Sequencer(client, "gw-retry")
        lines = [b'{"account":"a","amount":5,"type":"deposit"}']
        value = encode_chunk(lines)
        landed, ours = await client.create(chunk_key("gw-retry", 1), value)
        assert ours
        seq._counter = 1  # the sequencer does not know its attempt landed
        revision = await seq._append(value)
        written = seq.chunks_written
        await client.aclose()
        return landed, revision, written

    landed, revision, written = asyncio.run(run())
    assert revision == landed
    assert written == 1
    chunks = [c for c in read_log(etcd.endpoints[0]) if b"gw-retry" in c.key]
    assert [c.key for c in chunks] == [chunk_key("gw-retry", 1)]


def test_writes_starting_while_the_first_reads_the_last_key_take_distinct_keys(
    etcd: EtcdCluster,
) -> None:
    """A gateway's first writes start before it knows its next key (at a far site the read of
    the last key takes a round trip to the leader). They used to read it each and take the same
    key, all but one retrying, again and again: at a far site's venue start, writes refused
    after the 3 s deadline. Now they wait for the one read and take the next keys."""

    async def run() -> tuple[list[tuple[int, int]], int, int]:
        client = EtcdClient(etcd.endpoints)
        seq = Sequencer(client, "gw-first", max_inflight=8, pipeline_min=1)
        runner = asyncio.create_task(seq.run())
        try:
            pending = []
            for n in range(8):
                line = b'{"account":"f%d","amount":1,"type":"deposit"}' % n
                pending.append(asyncio.ensure_future(seq.submit([line])))
                await asyncio.sleep(0)  # a chunk of its own, its write started
            positions = await asyncio.gather(*pending)
        finally:
            runner.cancel()
            await client.aclose()
        return positions, seq.retries, seq.chunks_written

    positions, retries, written = asyncio.run(run())
    assert (retries, written) == (0, 8)
    assert len({revision for revision, _ in positions}) == 8
    keys = [c.key for c in read_log(etcd.endpoints[0]) if b"gw-first" in c.key]
    assert sorted(keys) == [chunk_key("gw-first", k) for k in range(1, 9)]  # each its own


def _deposit(n: int) -> bytes:
    return b'{"account":"p%d","amount":1,"type":"deposit"}' % n


async def _turns(n: int = 3) -> None:
    """Let the event loop run ``n`` rounds (far less than one etcd round trip)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_with_a_write_in_flight_a_few_waiting_messages_wait_for_it_and_go_in_one_chunk(
    etcd: EtcdCluster,
) -> None:
    """On one host a second transaction for a message or two only splits the same orders into
    more, slower transactions: with a write in flight, fewer than ``pipeline_min`` waiting
    messages wait until no write is in flight, then go together; as many as ``pipeline_min``
    start a write of their own at once (pipelining, as across distance). A lone message behind a
    write goes when that write ends."""

    async def run() -> tuple[list[tuple[int, int]], list[tuple[int, int]], int, int]:
        client = EtcdClient(etcd.endpoints)
        # attempts of 10 s: no write here grows old enough to let a small remainder go early
        seq = Sequencer(client, "gw-pipe", max_inflight=8, pipeline_min=3, attempt_timeout=10)
        runner = asyncio.create_task(seq.run())
        in_flight = []
        try:
            first = asyncio.ensure_future(seq.submit([_deposit(0)]))
            await _turns()
            in_flight.append((seq.writes_in_flight, seq.queued))  # the first write, started at once
            small = [asyncio.ensure_future(seq.submit([_deposit(n)])) for n in (1, 2)]
            await _turns()
            in_flight.append(
                (seq.writes_in_flight, seq.queued)
            )  # two waiting, below 3: no second write
            big = asyncio.ensure_future(seq.submit([_deposit(3)]))
            await _turns()
            in_flight.append(
                (seq.writes_in_flight, seq.queued)
            )  # three waiting: a second write started
            positions = list(await asyncio.gather(first, *small, big))
            ahead = asyncio.ensure_future(seq.submit([_deposit(4)]))
            await _turns()
            lone = asyncio.ensure_future(seq.submit([_deposit(5)]))
            await _turns()
            in_flight.append(
                (seq.writes_in_flight, seq.queued)
            )  # the lone one waits for the one ahead
            positions.append(await ahead)
            positions.append(await asyncio.wait_for(lone, 5))  # woken by its end
        finally:
            runner.cancel()
            await client.aclose()
        return positions, in_flight, seq.chunks_written, seq.writes_in_flight

    positions, in_flight, written, after = asyncio.run(run())
    assert in_flight == [(1, 0), (1, 2), (2, 0), (1, 1)]  # (writes, messages waiting)
    assert (written, after) == (4, 0)
    (rev0, at0), (rev1, at1), (rev2, at2), (rev3, at3), (rev4, _), (rev5, _) = positions
    assert at0 == 0 and rev1 == rev2 == rev3 != rev0  # the three waiting went together
    assert (at1, at2, at3) == (0, 1, 2)
    assert rev5 > rev4 > rev3
    logged = by_position([c for c in read_log(etcd.endpoints[0]) if b"gw-pipe" in c.key])
    assert [logged[p] for p in positions] == [_deposit(n) for n in range(6)]


def test_a_write_in_flight_longer_than_one_attempt_no_longer_holds_a_small_remainder_back(
    etcd: EtcdCluster,
) -> None:
    """During an outage the write in flight may take until its deadline and beyond: the
    messages behind it must not wait for that as well (their own write would then start only
    after it, doubling the clients' wait for an answer). Once the newest write in flight is
    older than one attempt, another starts whatever its size. The member is paused for it."""

    async def run() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        client = EtcdClient(etcd.endpoints, timeout=0.5)
        seq = Sequencer(
            client, "gw-late", max_inflight=2, pipeline_min=64, attempt_timeout=0.1, deadline=20
        )
        runner = asyncio.create_task(seq.run())
        in_flight = []
        try:
            etcd.pause("solo")
            try:
                first = asyncio.ensure_future(seq.submit([_deposit(10)]))
                await _turns()
                second = asyncio.ensure_future(seq.submit([_deposit(11)]))
                await _turns()
                in_flight.append(
                    (seq.writes_in_flight, seq.queued)
                )  # held back: the first is young
                await asyncio.sleep(0.4)
                in_flight.append(
                    (seq.writes_in_flight, seq.queued)
                )  # the first is old: the second went
            finally:
                etcd.resume("solo")
            positions = await asyncio.wait_for(asyncio.gather(first, second), 15)
        finally:
            runner.cancel()
            await client.aclose()
        return in_flight, positions

    in_flight, positions = asyncio.run(run())
    assert in_flight == [(1, 1), (2, 0)]  # (writes, messages waiting)
    assert positions[0][0] != positions[1][0]  # two chunks, each committed once
    logged = by_position([c for c in read_log(etcd.endpoints[0]) if b"gw-late" in c.key])
    assert [logged[p] for p in positions] == [_deposit(10), _deposit(11)]


def test_gateways_writing_at_once_get_distinct_positions_in_one_revision_order(
    etcd: EtcdCluster,
) -> None:
    async def run() -> list[tuple[str, tuple[int, int]]]:
        clients = [EtcdClient(etcd.endpoints) for _ in range(3)]
        seqs = [Sequencer(c, f"gw{k}", max_messages=7) for k, c in enumerate(clients)]
        runners = [asyncio.create_task(s.run()) for s in seqs]
        try:
            sent = []
            for n in range(60):
                line = b'{"account":"a%d","amount":%d,"type":"deposit"}' % (n, n + 1)
                sent.append((line, seqs[n % 3].submit([line])))
            positions = await asyncio.gather(*(fut for _, fut in sent))
            return [(line.decode(), pos) for (line, _), pos in zip(sent, positions, strict=True)]
        finally:
            for r in runners:
                r.cancel()
            for c in clients:
                await c.aclose()

    acked = asyncio.run(run())
    chunks = read_log(etcd.endpoints[0])
    assert [c.revision for c in chunks] == sorted(c.revision for c in chunks)
    assert {c.key.split(b"/")[3] for c in chunks} >= {b"gw0", b"gw1", b"gw2"}
    logged = by_position(chunks)
    assert len({pos for _, pos in acked}) == 60
    for line, pos in acked:
        assert logged[pos].decode() == line


def test_a_gateway_writes_the_compression_it_is_set_to_and_nodes_read_both(
    etcd: EtcdCluster,
) -> None:
    """Zstandard by default; zlib (the format older nodes read) when set so for an upgrade. The
    chunks are read back from etcd as a node reads them."""

    async def run() -> dict[str, tuple[int, int]]:
        client = EtcdClient(etcd.endpoints)
        seqs = {c: Sequencer(client, f"gw-{c}", compression=c) for c in ("zstd", "zlib")}
        runners = [asyncio.create_task(s.run()) for s in seqs.values()]
        try:
            return {c: await s.submit([_deposit(20), _deposit(21)]) for c, s in seqs.items()}
        finally:
            for r in runners:
                r.cancel()
            await client.aclose()

    positions = asyncio.run(run())
    chunks = {c.key: c for c in read_log(etcd.endpoints[0]) if b"/gw-z" in c.key}
    prefix = b"/venue/log/gw-z"
    body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
    raw = post_json(etcd.endpoints[0] + "/v3/kv/range", body)
    values = {unb64(kv["key"]): unb64(kv["value"]) for kv in raw["kvs"]}
    assert values[chunk_key("gw-zstd", 1)][:4] == ZSTD_MAGIC
    assert values[chunk_key("gw-zlib", 1)][:2] == b"\x78\x01"  # zlib at level 1
    for compression, (revision, index) in positions.items():
        chunk = chunks[chunk_key(f"gw-{compression}", 1)]
        assert (chunk.revision, index) == (revision, 0)
        assert chunk.lines == [_deposit(20), _deposit(21)]
