"""Which snapshot a node holds for the committee, at the node's edges: a published position is
never taken back (a put whose answer was lost, a restart that restored an older snapshot than the
one it published), and ``GET /snapshot`` never gives another snapshot than the held one (a peer
taking the newest could never sign the batches before it). etcd is a named fake here (a dict
whose puts can land and then fail): the real cluster's paths are in
``tests/integration/test_node_batches.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient

from validator.engine import Engine
from validator.node.errors import EtcdUnavailableError
from validator.node.etcdwire import KeyValue
from validator.node.follower import Node
from validator.node.inputlog import SNAP
from validator.node.queries import create_app
from validator.node.settings import Settings
from validator.node.snapshot_files import Position


class FakeEtcd:
    """A fake etcd (a dict): ``lost_answers`` makes a put land and then raise, as a request
    whose answer timed out after the member applied it; ``down`` makes every read fail."""

    def __init__(self) -> None:
        self.kv: dict[bytes, bytes] = {}
        self.lost_answers = False
        self.down = False

    async def put(self, key: bytes, value: bytes) -> None:
        self.kv[key] = value
        if self.lost_answers:
            raise EtcdUnavailableError("no answer in time (the write may have landed)")

    async def get(self, key: bytes) -> KeyValue | None:
        if self.down:
            raise EtcdUnavailableError("no member answers")
        value = self.kv.get(key)
        return None if value is None else KeyValue(key, value, 1)

    async def get_range(self, start: bytes, end: bytes) -> tuple[list[KeyValue], int, bool]:
        """Nothing (compaction then waits for every member's position)."""
        return [], 0, False


def node(tmp_path: Path, etcd: FakeEtcd) -> Node:
    settings = Settings(
        node_id="fra1",
        etcd_endpoints=["http://127.0.0.1:9"],
        committee=["fra1", "ams1", "lon1"],
        data_dir=tmp_path,
        batch_every=10,
        snapshot_every=20,
    )
    n = Node(settings, etcd)  # type: ignore[arg-type]
    n.settled_through = 0  # a settler runs
    return n


def snapshots(n: Node, *ordinals: int, hold: int | None = None) -> None:
    """Snapshots at ``ordinals`` (holding the newest at or before ``hold``, if given)."""
    for k in ordinals:
        at, state = Position(k, 10 * k, bytes(32)), Engine().snapshot()
        if hold is None:
            n.store.save(at, 0, state)
        else:
            n.store.save_holding(at, 0, state, hold=hold, at_least=0, span=1_000)


def test_a_put_whose_answer_is_lost_still_moves_the_published_position(tmp_path: Path) -> None:
    """The position is recorded before the put: the put may have landed, and the next held
    snapshot must not go below what etcd may now hold (before, it was recorded only after a put
    that answered, so one lost answer let the next one go back)."""
    etcd = FakeEtcd()
    n = node(tmp_path, etcd)
    n.applied, n.revision = 20, 200
    etcd.lost_answers = True
    try:
        asyncio.run(n._snapshot())
    except EtcdUnavailableError:
        pass
    else:
        raise AssertionError("the fake's put did not fail")
    assert etcd.kv[SNAP + b"fra1"] == b"20 200"
    assert n.published == 20


def test_a_restart_from_an_older_snapshot_never_holds_below_what_it_published(
    tmp_path: Path,
) -> None:
    """The newest snapshot (40) does not load and the node restores the one before (20); it
    had published 40, so its next snapshot (at 30, a node with no settler, which holds its
    newest) publishes nothing lower: the published position stands (before: it published 30,
    and the committee may have compacted the log below 40)."""
    etcd = FakeEtcd()
    n = node(tmp_path, etcd)
    n.settled_through = None  # no settler: it holds its newest, never below what it published
    snapshots(n, 20, 40)
    newest = n.store.latest()
    assert newest is not None
    newest.write_bytes(newest.read_bytes()[:-10])
    etcd.kv[SNAP + b"fra1"] = b"40 400"
    n.restore()
    assert n.applied == 20
    asyncio.run(n._read_published())
    n.applied, n.revision = 30, 300
    asyncio.run(n._snapshot())
    assert (n.published, etcd.kv[SNAP + b"fra1"]) == (40, b"40 400")


def test_a_restart_with_etcd_down_waits_for_it_and_keeps_holding_the_committed_snapshot(
    tmp_path: Path,
) -> None:
    """Snapshots at 20, 40 and 60; the node published 20 (the ledger's last commit) and etcd
    does not answer when it restarts. It asks until etcd answers (``/snapshot`` says 503
    meanwhile) and goes on holding 20. Before, it took its newest file (60) as published and
    held that for good: a peer catching up from it could not sign the batches from 21 to 60."""
    etcd = FakeEtcd()
    n = node(tmp_path, etcd)
    snapshots(n, 20, 40, 60, hold=20)
    etcd.kv[SNAP + b"fra1"] = b"20 200"
    etcd.down = True
    n.restore()
    client = TestClient(create_app(n))

    async def restart() -> None:
        reading = asyncio.create_task(n._read_published())
        await asyncio.sleep(0.5)
        assert not reading.done() and n.published is None
        reply = await asyncio.to_thread(client.get, "/snapshot")
        assert (reply.status_code, reply.json()) == (
            503,
            {"error": "the held snapshot is not known yet (etcd unread)"},
        )
        etcd.down = False
        await asyncio.wait_for(reading, 5)

    asyncio.run(restart())
    assert n.published == 20
    n.settled_through, n.applied, n.revision = 20, 80, 800
    asyncio.run(n._snapshot())
    assert (n.published, etcd.kv[SNAP + b"fra1"]) == (20, b"20 200")
    assert n.store.path_at(20) is not None


def test_the_snapshot_endpoint_gives_the_held_snapshot_and_never_another(tmp_path: Path) -> None:
    """``GET /snapshot`` answers the file at the published position; when that file is not on
    the node (not written yet, or gone), 503 saying so, not the newest one: a peer that took the
    newest would never compute, nor sign, the batches before it."""
    n = node(tmp_path, FakeEtcd())
    snapshots(n, 20, 40)
    client = TestClient(create_app(n))
    n.published = 20
    reply = client.get("/snapshot")
    assert reply.status_code == 200 and reply.content.startswith(b'{"chain"')
    assert b'"ordinal": 20' in reply.content.partition(b"\n")[0]
    n.published = 60
    reply = client.get("/snapshot")
    assert reply.status_code == 503
    assert reply.json() == {"error": "the snapshot held at chunk 60 is not here yet"}


def test_a_damaged_held_snapshot_is_not_served(tmp_path: Path) -> None:
    """A held file whose body no longer matches its header's sha256 (a flipped bit on disk)
    answers 503 naming the damage: a peer would refuse it after downloading it."""
    n = node(tmp_path, FakeEtcd())
    snapshots(n, 20, 40)
    path = n.store.path_at(20)
    assert path is not None
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    n.published = 20
    reply = TestClient(create_app(n)).get("/snapshot")
    assert reply.status_code == 503
    assert reply.json()["error"].startswith("the snapshot held at chunk 20 is damaged: body sha256")
