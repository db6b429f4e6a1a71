"""A follower's own failures are never silent, and junk or a replaced member's leftovers in etcd
neither stop compaction nor turn off the state-root check (a real 3-member etcd cluster)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.etcdcluster import EtcdCluster, start_cluster
from validator.node.etcd import EtcdClient
from validator.node.follower import Boundary, Node
from validator.node.inputlog import SNAP, roots_prefix
from validator.node.sequencer import Sequencer
from validator.node.settings import Settings

COMMITTEE = ["ams1", "fra1", "sin1"]


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(["s0", "s1", "s2"], tmp_path / "etcd") as c:
        yield c


def node(etcd: EtcdCluster, tmp_path: Path, name: str = "ams1") -> Node:
    settings = Settings(
        node_id=name,
        etcd_endpoints=etcd.endpoints,
        committee=COMMITTEE,
        data_dir=tmp_path / name,
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
        for member in ("ams1", "fra1", "sin1"):  # the next boundary: all agree but this node
            await put(roots_prefix(100) + member.encode(), root(later, b"\x44" * 32))
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
