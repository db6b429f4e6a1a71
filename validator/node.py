"""A validator node: follows the etcd log in order and applies it to the deterministic engine.

On start it restores its newest snapshot and replays the chunks after it, then watches the log
from the revision it has read up to. Every ``snapshot_every`` chunks it writes a snapshot and
publishes the snapshot's chunk index; the log below the minimum index over the whole committee is
deleted and compacted. Every ``batch_every`` chunks (a batch boundary) it publishes its state
root; once most of the committee has published a root for that boundary, a node whose root
differs stops serving reads and says so, once.
"""

from __future__ import annotations

import asyncio
import json
import logging

from validator.engine import Engine
from validator.errors import EtcdError, NodeDivergedError
from validator.etcd import EtcdClient, prefix_end
from validator.log import LOG, SNAP, Chunk, chunk_index, chunk_key, roots_prefix
from validator.settings import Settings
from validator.snapshots import SnapshotStore

log = logging.getLogger("validator.node")


class Boundary:
    """This node's view of one batch boundary: the sequences it covers and the root after it."""

    __slots__ = ("first", "index", "last", "root")

    def __init__(self, index: int, first: int, last: int, root: bytes) -> None:
        self.index, self.first, self.last, self.root = index, first, last, root


class Node:
    def __init__(self, settings: Settings, etcd: EtcdClient) -> None:
        self.settings = settings
        self.etcd = etcd
        self.store = SnapshotStore(settings.data_dir / "snapshots")
        self.engine = Engine()
        self.applied = 0
        """Chunk index applied last."""
        self.boundary_seq = 0
        """Sequence at the last batch boundary."""
        self.diverged: str | None = None
        self.unchecked: list[Boundary] = []
        self.boundaries: asyncio.Queue[Boundary] = asyncio.Queue()
        """Batch boundaries, for the settlement signer."""
        self.head_seen = 0
        self.compacted_below = 0

    def restore(self) -> None:
        found = self.store.load_latest()
        if found is not None:
            self.applied, self.engine = found
            self.boundary_seq = self.engine.seq
            log.info("restored snapshot at chunk %d (seq %d)", self.applied, self.engine.seq)

    @property
    def serving(self) -> bool:
        return self.diverged is None

    async def run(self) -> None:
        self.restore()
        checker = asyncio.create_task(self._check_roots_forever())
        try:
            while self.diverged is None:
                try:
                    revision = await self._catch_up()
                    async for kv in self.etcd.watch(LOG, prefix_end(LOG), revision + 1):
                        index = chunk_index(kv.key)
                        if index == self.applied + 1:
                            await self._apply(Chunk.decode(index, kv.value))
                        elif index > self.applied + 1:
                            break  # missed something: read it by key
                except EtcdError as exc:
                    log.debug("log unavailable (%s); retrying", exc)
                    await asyncio.sleep(0.05)
        except NodeDivergedError as exc:
            self.diverged = f"node {self.settings.node_id} stopped serving: {exc}"
            log.error(self.diverged)
        finally:
            checker.cancel()

    async def _catch_up(self) -> int:
        """Apply every chunk after ``applied``; the revision the reads were made at."""
        while True:
            kvs, revision, more = await self.etcd.get_range(
                chunk_key(self.applied + 1), prefix_end(LOG), limit=100
            )
            for kv in kvs:
                await self._apply(Chunk.decode(chunk_index(kv.key), kv.value))
            if not more:
                return revision

    async def _apply(self, chunk: Chunk) -> None:
        engine = self.engine
        if chunk.index != self.applied + 1 or chunk.first != engine.seq + 1:
            raise NodeDivergedError(
                f"chunk {chunk.index} starts at seq {chunk.first}, expected chunk "
                f"{self.applied + 1} at seq {engine.seq + 1}"
            )
        for seq, msg in enumerate(chunk.messages(), chunk.first):
            engine.apply_at(seq, msg)
        self.applied = chunk.index
        self.head_seen = max(self.head_seen, chunk.index)
        if chunk.index % self.settings.batch_every == 0:
            await self._boundary()
        if chunk.index % self.settings.snapshot_every == 0:
            await self._snapshot()

    async def _boundary(self) -> None:
        b = Boundary(self.applied, self.boundary_seq + 1, self.engine.seq, self.engine.state_hash())
        self.boundary_seq = b.last
        value = json.dumps({"root": b.root.hex(), "first": b.first, "last": b.last})
        await self.etcd.put(roots_prefix(b.index) + self.settings.node_id.encode(), value.encode())
        self.unchecked.append(b)
        self.boundaries.put_nowait(b)

    async def _snapshot(self) -> None:
        await asyncio.to_thread(self.store.save, self.applied, self.engine)
        await self.etcd.put(SNAP + self.settings.node_id.encode(), str(self.applied).encode())
        await self._compact()

    async def _compact(self) -> None:
        """Delete and compact the log below every committee node's newest snapshot."""
        kvs, revision, _ = await self.etcd.get_range(SNAP, prefix_end(SNAP))
        published = {kv.key[len(SNAP) :].decode(): int(kv.value) for kv in kvs}
        if set(published) < set(self.settings.committee):
            return
        floor = min(published[n] for n in self.settings.committee)
        if floor <= self.compacted_below:
            return
        await self.etcd.delete_range(chunk_key(1), chunk_key(floor))
        await self.etcd.compact(revision)
        self.compacted_below = floor
        log.info("log compacted below chunk %d", floor)

    async def _check_roots_forever(self) -> None:
        majority = len(self.settings.committee) // 2 + 1
        while True:
            await asyncio.sleep(0.1)
            while self.unchecked:
                b = self.unchecked[0]
                try:
                    kvs, _, _ = await self.etcd.get_range(
                        roots_prefix(b.index), prefix_end(roots_prefix(b.index))
                    )
                except EtcdError:
                    break
                votes: dict[str, int] = {}
                for kv in kvs:
                    root = json.loads(kv.value)["root"]
                    votes[root] = votes.get(root, 0) + 1
                agreed = next((r for r, n in votes.items() if n >= majority), None)
                if agreed is None and sum(votes.values()) < len(self.settings.committee):
                    break  # wait for more roots
                self.unchecked.pop(0)
                if agreed is not None and agreed != b.root.hex():
                    self.diverged = (
                        f"node {self.settings.node_id} DIVERGED at chunk {b.index} (seq {b.last}): "
                        f"own root {b.root.hex()} != committee root {agreed}; stopped serving"
                    )
                    log.error(self.diverged)
                    return
