"""A validator node: follows the etcd log in order and applies it to the deterministic engine.

On start it restores its newest snapshot, then watches the log from the revision after it: etcd
replays the history it still holds and then streams new chunks, all in revision order. Every
``snapshot_every`` chunks it writes a snapshot and publishes the position of the one it holds for
the committee (with a settler, the newest at or before the ledger's last commit, so that a peer
catching up replays and signs the batches the ledger lacks; ``_snapshot``); log keys below the
minimum position over the whole committee are deleted (``log_retention`` seconds later, so that a
gateway still retrying a write can find it) and etcd's history is compacted there. Every
``batch_every`` chunks (a batch boundary) it publishes its state root and its hash-chain head;
once most of the committee has published a root for that boundary, a node whose root differs
stops serving reads and says so, once. A node whose position etcd has compacted away (a new or
replaced machine) takes a peer's snapshot the committee vouches for (``validator.node.catchup``).
So does a node whose root differed (a bug, damage in memory): it sets its own snapshots
aside for a person to examine, takes the committee's state and serves again, at most
``divergence_resyncs`` times; after that it stays stopped (a fault that keeps coming back is not
one a re-sync cures).

Each chunk is decoded in one call, applied, and linked into the node's hash chain
(``validator.engine.hashchain``: one sha256 per chunk over the lines read and their results), so
equal chain heads at a chunk mean the nodes applied the same bytes with the same results.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import time
from collections.abc import Callable

from validator.engine import IMPLEMENTATION, Engine
from validator.engine.errors import MessageError
from validator.engine.hashchain import GENESIS, HashChain
from validator.node.catchup import transfer
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient, EtcdCompactedError, KeyValue, prefix_end
from validator.node.inputlog import (
    FLOOR,
    LOG,
    ROOTS,
    SNAP,
    Chunk,
    apply_chunk,
    counter_bytes,
    roots_prefix,
)
from validator.node.settings import Settings
from validator.node.snapshot_files import Position, SnapshotStore

log = logging.getLogger("validator.node.follower")


class Boundary:
    """This node's view of one batch boundary: the sequences it covers and the root after it."""

    __slots__ = ("chain", "first", "generation", "index", "last", "root")

    def __init__(
        self,
        index: int,
        first: int,
        last: int,
        root: bytes,
        chain: bytes = GENESIS,
        generation: int = 0,
    ) -> None:
        self.index, self.first, self.last, self.root = index, first, last, root
        self.chain = chain
        """Hash-chain head after the boundary's chunk."""
        self.generation = generation
        """The node's ``generation`` when it reached the boundary: a boundary of an older one
        was reached on a state the node has since set aside (see ``Node.resync``)."""


def tally(kvs: list[KeyValue], index: int, committee: set[str]) -> dict[str, int]:
    """Votes per state root (hex) among the roots published at boundary ``index``: one per
    committee member (a former member's root, or an entry that cannot be read, is no vote)."""
    votes: dict[str, int] = {}
    prefix = len(roots_prefix(index))
    for kv in kvs:
        if kv.key[prefix:].decode(errors="replace") not in committee:
            continue
        try:
            root = str(json.loads(kv.value)["root"])
        except (ValueError, KeyError, TypeError, RecursionError):
            log.warning("root entry %r unreadable: not a vote", kv.key)
            continue
        votes[root] = votes.get(root, 0) + 1
    return votes


class Node:
    def __init__(self, settings: Settings, etcd: EtcdClient) -> None:
        self.settings = settings
        self.etcd = etcd
        self.store = SnapshotStore(settings.data_dir / "snapshots")
        self.engine = Engine()
        self.chain = HashChain()
        """Hash chain over every chunk applied (one link per chunk)."""
        self.applied = 0
        """Chunks applied (the ordinal of the last one)."""
        self.revision = 0
        """etcd revision of the last chunk applied."""
        self.boundary_seq = 0
        """Sequence at the last batch boundary."""
        self.diverged: str | None = None
        """Why this node stopped serving (its state is not the committee's, or it failed): it
        serves no read and signs no batch. For good, unless ``divergence`` is set too."""
        self.divergence: str | None = None
        """Set with ``diverged`` when the state root differed from the committee's and a
        re-sync is left (``divergence_resyncs``): the follower sets its snapshots aside and
        takes a snapshot the committee vouches for, then serves again."""
        self.resyncs = 0
        """Re-syncs after a divergence so far."""
        self.generation = 0
        """Bumped by each re-sync (see ``signable``)."""
        self._refuted_from: dict[int, int] = {}
        """Per generation that ended in a re-sync: the first boundary whose root the committee
        refuted (the ones before it were checked and agreed)."""
        self._diverged_at = 0
        self._follow_task: asyncio.Task[None] | None = None
        self._applying = False
        self.lagging: str | None = None
        """Why this node cannot serve yet (its log position is gone and no peer's snapshot has
        been accepted so far); it keeps trying."""
        self.unchecked: list[Boundary] = []
        self.boundaries: asyncio.Queue[Boundary] = asyncio.Queue()
        """Batch boundaries, for the settlement signer."""
        self.restored = asyncio.Event()
        """Set once the newest snapshot is restored."""
        self.restored_at = 0
        """The chunk the node started from (its snapshot's), once ``restored`` is set."""
        self.deleted_below = 0
        self._floors: collections.deque[tuple[float, int, int]] = collections.deque()
        """(when seen, revision, chunk ordinal) of the committee's lowest snapshot position."""
        self._usable_floor = (0, 0)
        """(revision, ordinal) of a floor ``log_retention`` old: what may be deleted below."""
        self._roots_forgotten_below = 0
        self.settled_through: int | None = None if settings.chain is None else 0
        """The settler's: the highest boundary (chunk ordinal) the ledger has committed, up to
        which this node's roots may go; None when no settler runs (nothing waits for them)."""
        self.snapshot_failures = 0
        """Snapshots that could not be written (a full or failing disk) since the start."""
        self.published: int | None = None
        """Chunk ordinal of the snapshot position this node last published (``SNAP``): the
        snapshot it holds for the committee and gives a peer catching up; None before it knows."""

    def restore(self) -> None:
        found = self.store.load_latest()
        if found is not None:
            at, self.engine = found
            self.applied, self.revision = at.ordinal, at.revision
            self.chain = HashChain(self.engine.seq, at.chain)
            self.boundary_seq = self.engine.seq
            log.info(
                "restored snapshot at chunk %d (revision %d, seq %d)",
                self.applied,
                self.revision,
                self.engine.seq,
            )

    @property
    def serving(self) -> bool:
        return self.diverged is None and self.lagging is None

    @property
    def why_not_serving(self) -> str | None:
        return self.diverged or self.lagging

    def stop_serving(self, reason: str) -> None:
        if self.diverged is None:
            self.diverged = f"node {self.settings.node_id} stopped serving: {reason}"
            log.error(self.diverged)

    async def run(self) -> None:
        log.info("engine: %s", IMPLEMENTATION)
        self.restore()
        self.restored_at = self.applied
        await self._read_published()
        self.restored.set()
        while True:
            checker = asyncio.create_task(self._check_roots_forever())
            checker.add_done_callback(self._ended("the state-root checker"))
            self._follow_task = asyncio.create_task(self._follow())
            try:
                await self._follow_task  # returns only when a re-sync is due
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self.divergence is None or (task is not None and task.cancelling()):
                    raise  # not (only) the checker's doing: this task itself is cancelled
            finally:
                checker.cancel()
            await self.resync()

    async def _read_published(self) -> None:
        """The position this node published before it (re)started: the snapshot it holds must
        not go back past it (the committee may have compacted the log below it), even when the
        newest snapshot did not load and an older one was restored; nor jump to its newest (a
        peer catching up from that could not sign the batches before it). Asked until etcd
        answers (the node can do nothing without it); ``GET /snapshot`` answers 503 meanwhile.
        An unreadable entry (not the node's writing): the newest snapshot file's."""
        wait = 0.2
        while True:
            try:
                kv = await self.etcd.get(SNAP + self.settings.node_id.encode())
                break
            except EtcdError as exc:
                log.warning("own snapshot position not read yet (%s); retrying", exc)
                await asyncio.sleep(wait)
                wait = min(2 * wait, 2.0)
        try:
            self.published = 0 if kv is None else int(kv.value.split()[0])
        except (ValueError, IndexError):
            self.published = self.store.latest_ordinal()
            log.warning("own snapshot position unreadable: holding from chunk %d", self.published)

    async def _follow(self) -> None:
        """Apply the log from our position on until a re-sync is due (a diverged node with no
        re-sync left goes on applying, serving nothing: its snapshot position still lets the
        committee compact the log)."""
        while self.divergence is None:
            try:
                async for kv in self.etcd.watch(LOG, prefix_end(LOG), self.revision + 1):
                    if kv.mod_revision > self.revision:
                        self._applying = True
                        try:
                            await self._apply(kv.key, kv.mod_revision, kv.value)
                        finally:
                            self._applying = False
                    if self.divergence is not None:
                        return
                    await asyncio.sleep(0)  # let reads in between chunks
            except EtcdCompactedError as exc:
                wait = 1.0
                while not await self.catch_up(str(exc)):  # peers restarting, unreachable,
                    await asyncio.sleep(wait)  # or not yet vouched for: try again
                    wait = min(2 * wait, 10.0)
            except EtcdError as exc:
                log.debug("log unavailable (%s); retrying", exc)
                await asyncio.sleep(0.05)

    def signable(self, b: Boundary) -> bool:
        """Whether ``b``'s root is one this node may sign: reached in the current generation,
        or before the first boundary the committee refuted in the generation it was reached in
        (those were checked and agreed before the state went wrong)."""
        if b.generation == self.generation:
            return True
        return b.index < self._refuted_from.get(b.generation, 0)

    def _diverge(self, why: str, index: int) -> None:
        """The state root at boundary ``index`` differs from the committee's: stop serving and,
        with a re-sync left and peers to take a snapshot from, have ``run`` re-sync (at once
        when the follower waits for the log, else after the chunk it is applying)."""
        self.stop_serving(why)
        left = self.settings.divergence_resyncs - self.resyncs
        if left <= 0 or not self.settings.peers:
            # it goes on applying, serving nothing: its snapshot position moves on, and the
            # committee's log compaction with it
            log.error(
                "node %s: no re-sync left (%d done, divergence_resyncs %d, %d peers): stopped "
                "for good",
                self.settings.node_id, self.resyncs, self.settings.divergence_resyncs,
                len(self.settings.peers),
            )  # fmt: skip
            return
        self.divergence, self._diverged_at = why, index
        if self._follow_task is not None and not self._applying:
            self._follow_task.cancel()

    async def resync(self) -> None:
        """Set this node's own snapshots aside (kept for a person to examine) and start again
        from a peer's snapshot the committee vouches for, as a node whose log position is gone
        does; serve again once one is taken. Boundaries reached on the state set aside are
        dropped and never signed, and this node's roots from the first refuted one on are
        deleted (a restart would read them back and sign them); the boundaries before it were
        checked and agreed, and are still signed."""
        why = self.divergence or "re-sync"
        self.resyncs += 1
        self._refuted_from[self.generation] = self._diverged_at
        self.generation += 1
        queued = [self.boundaries.get_nowait() for _ in range(self.boundaries.qsize())]
        for b in queued:
            if self.signable(b):
                self.boundaries.put_nowait(b)
        own = b"/" + self.settings.node_id.encode()
        while True:
            try:
                kvs, _, _ = await self.etcd.get_range(
                    roots_prefix(self._diverged_at), prefix_end(ROOTS), keys_only=True
                )
                await self.etcd.delete_keys([kv.key for kv in kvs if kv.key.endswith(own)])
                break
            except EtcdError as exc:
                log.debug("refuted roots not deleted yet (%s); retrying", exc)
                await asyncio.sleep(0.05)
        aside = await asyncio.to_thread(self.store.set_aside, why)
        log.error(
            "node %s re-syncing (%d of %d) from a snapshot the committee vouches for; its own "
            "snapshots are set aside in %s",
            self.settings.node_id, self.resyncs, self.settings.divergence_resyncs, aside,
        )  # fmt: skip
        self.engine = Engine()
        self.chain = HashChain()
        self.applied = self.revision = self.boundary_seq = 0
        self.unchecked.clear()
        wait = 1.0
        while not await self.catch_up(why):
            await asyncio.sleep(wait)
            wait = min(2 * wait, 10.0)
        self.divergence = self.diverged = None
        log.info(
            "node %s re-synced at chunk %d: serving again", self.settings.node_id, self.applied
        )

    def start(self) -> asyncio.Task[None]:
        """``run`` as a task whose failure stops the node serving (and says why): a follower
        that died of an error nobody expected must not go on answering reads from a frozen
        state as if it were healthy."""
        task = asyncio.create_task(self.run())
        task.add_done_callback(self._ended("the log follower"))
        return task

    def _ended(self, what: str) -> Callable[[asyncio.Task[None]], None]:
        def ended(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            exc = task.exception()
            log.error("%s failed", what, exc_info=exc)
            self.stop_serving(f"{what} failed: {exc!r}")

        return ended

    def _lagging(self, what: str) -> bool:
        """Not serving yet, and why (logged when it changes); False, to be tried again."""
        lagging = f"node {self.settings.node_id} {what}; trying again"
        if lagging != self.lagging:
            log.error(lagging)
        self.lagging = lagging
        return False

    async def catch_up(self, why: str) -> bool:
        """The log from our position is compacted away: take a peer's snapshot the committee
        vouches for (``validator.node.catchup``) and go on from there; False (not serving
        meanwhile, saying why each peer was refused) if none is, this time."""
        got, refused = await transfer(
            self.settings.peers, self.etcd, self.settings.committee, self.revision
        )
        if got is None:
            reasons = "; ".join(refused) or "no peers configured (the peers setting)"
            return self._lagging(
                f"cannot catch up from revision {self.revision} ({why}) and no peer's snapshot "
                f"was accepted: {reasons}"
            )
        try:
            await asyncio.to_thread(self.store.save, got.at, got.seq, got.body)
        except OSError as exc:  # a full or failing disk: nothing taken yet, try again later
            return self._lagging(
                f"cannot write the snapshot it caught up from ({got.peer}, chunk "
                f"{got.at.ordinal}): {exc}"
            )
        self.lagging = None
        # may be below the position published before (a re-sync, an older snapshot restored):
        # still at or above the committee's compaction floor, which the peer's position is
        self.published = got.at.ordinal
        try:  # the committee's compaction may pass the position it held before
            position = f"{got.at.ordinal} {got.at.revision}".encode()
            await self.etcd.put(SNAP + self.settings.node_id.encode(), position)
        except EtcdError as exc:  # the next snapshot publishes it
            log.warning("snapshot position not published yet: %s", exc)
        self.engine = got.engine
        self.applied, self.revision = got.at.ordinal, got.at.revision
        self.chain = HashChain(got.seq, got.at.chain)
        self.boundary_seq = got.seq
        self.unchecked.clear()
        log.info(
            "caught up by snapshot transfer from %s at chunk %d (revision %d, seq %d), "
            "verified against the committee's state root",
            got.peer, got.at.ordinal, got.at.revision, got.seq,
        )  # fmt: skip
        return True

    async def _apply(self, key: bytes, revision: int, value: bytes) -> None:
        try:
            chunk = Chunk.decode(key, revision, value)
        except MessageError as exc:  # never written by a gateway: skipped alike by every node
            log.warning("log revision %d skipped: %s", revision, exc)
            return
        apply_chunk(self.engine, self.chain, chunk)
        self.applied += 1
        self.revision = revision
        if self.applied % self.settings.batch_every == 0:
            await self._boundary()
        if self.applied % self.settings.snapshot_every == 0:
            await self._snapshot()

    async def _boundary(self) -> None:
        engine = self.engine
        b = Boundary(
            self.applied,
            self.boundary_seq + 1,
            engine.seq,
            engine.state_hash(),
            self.chain.head,
            self.generation,
        )
        self.boundary_seq = b.last
        self.unchecked.append(b)
        if self.settled_through is not None:  # None: no settler runs to take them off
            self.boundaries.put_nowait(b)
        value = json.dumps(
            {
                "root": b.root.hex(),
                "first": b.first,
                "last": b.last,
                "chain": b.chain.hex(),
                "revision": self.revision,
            }
        ).encode()
        key = roots_prefix(b.index) + self.settings.node_id.encode()
        while True:  # the chunk is applied already: this root must be published, not skipped
            try:
                await self.etcd.put(key, value)
                return
            except EtcdError as exc:
                log.debug("root of chunk %d not published yet (%s); retrying", b.index, exc)
                await asyncio.sleep(0.05)

    async def _snapshot(self) -> None:
        """Write a snapshot, and publish the position of the one held for the committee: with
        a settler, the newest at or before the ledger's last committed boundary (at most
        ``settle_hold_chunks`` behind), so that the log is kept from there and a peer that
        catches up from it replays and signs the batches the ledger still lacks (with three
        equal stakes each needs every node's signature); else the newest. Never one below the
        position published before."""
        at = Position(self.applied, self.revision, self.chain.head)
        state = self.engine.snapshot()  # here, not in the thread: the engine moves on meanwhile
        settled = self.settled_through
        try:
            held = await asyncio.to_thread(
                functools.partial(
                    self.store.save_holding,
                    at,
                    self.engine.seq,
                    state,
                    hold=at.ordinal if settled is None else settled,
                    at_least=self.published or 0,
                    span=0 if settled is None else self.settings.settle_hold_chunks,
                )
            )
        except OSError as exc:
            # A full or failing disk: the chunk is applied, the snapshot is only a shortcut;
            # the next one is tried ``snapshot_every`` chunks on (ending the follower here
            # stopped the node and froze the committee's log compaction at its position).
            self.snapshot_failures += 1
            log.error("snapshot at chunk %d not written (%s); going on", at.ordinal, exc)
            held = None
        if held is not None:  # None: older than the position published, which stands
            # set first: a put whose answer is lost may still have landed, and the next held
            # position must not go below it
            self.published = held.ordinal
            await self.etcd.put(
                SNAP + self.settings.node_id.encode(), f"{held.ordinal} {held.revision}".encode()
            )
        await self._compact()

    async def _compact(self) -> None:
        """Delete the log keys every committee node has a snapshot past, and compact etcd's
        history there, once that floor is ``log_retention`` seconds old."""
        kvs, _, _ = await self.etcd.get_range(SNAP, prefix_end(SNAP))
        published: dict[str, tuple[int, int]] = {}
        for kv in kvs:
            try:
                at_ordinal, at_revision = kv.value.split()
                published[kv.key[len(SNAP) :].decode()] = (int(at_revision), int(at_ordinal))
            except (ValueError, UnicodeDecodeError):
                log.warning("snapshot position %r unreadable: %r", kv.key, kv.value[:80])
        # every member's position, not merely "not a strict subset": a replaced member's entry
        # beside a new member that has none yet is no floor at all
        if not set(self.settings.committee) <= set(published):
            return
        now = time.monotonic()
        lowest = min(published[n] for n in self.settings.committee)
        self._floors.append((now, *lowest))
        while self._floors and self._floors[0][0] <= now - self.settings.log_retention:
            _, *usable = self._floors.popleft()
            self._usable_floor = (usable[0], usable[1])
        floor, ordinal = self._usable_floor
        await self._forget_roots(ordinal)
        if floor <= self.deleted_below:
            return
        old, _, _ = await self.etcd.get_range(
            LOG, prefix_end(LOG), keys_only=True, max_mod_revision=floor
        )
        # First each gateway's floor past the keys about to go: an attempt at one of them still
        # held somewhere (a paused member answers it when it resumes) would otherwise create the
        # key again, and a chunk its clients were told never committed would be logged.
        highest: dict[bytes, int] = {}
        for kv in old:
            gateway, _, digits = kv.key[len(LOG) :].rpartition(b"/")
            if digits.isdigit():
                highest[gateway] = max(highest.get(gateway, 0), int(digits))
        for gateway, top in highest.items():
            await self.etcd.raise_to(FLOOR + gateway, counter_bytes(top))
        await self.etcd.delete_keys([kv.key for kv in old])
        await self.etcd.compact(floor)
        self.deleted_below = floor
        log.info("log compacted: %d chunks up to revision %d deleted", len(old), floor)

    async def _forget_roots(self, ordinal: int) -> None:
        """Delete this node's own roots below chunk ``ordinal`` (every committee node has a
        snapshot past it, for ``log_retention`` already: no catch-up asks for them, every
        checker had them) that the ledger has also committed (the settler resumes unsettled
        batches from them). Roots were kept forever: at a boundary every 50 chunks, etcd's
        space filled by about a kilobyte per boundary, until its quota stopped every write."""
        limit = ordinal if self.settled_through is None else min(ordinal, self.settled_through + 1)
        if limit <= self._roots_forgotten_below:
            return
        own = b"/" + self.settings.node_id.encode()
        kvs, _, _ = await self.etcd.get_range(ROOTS, roots_prefix(limit), keys_only=True)
        await self.etcd.delete_keys([kv.key for kv in kvs if kv.key.endswith(own)])
        self._roots_forgotten_below = limit

    async def _check_roots_forever(self) -> None:
        committee = set(self.settings.committee)
        majority = len(committee) // 2 + 1
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
                votes = tally(kvs, b.index, committee)
                agreed = next((r for r, n in votes.items() if n >= majority), None)
                if agreed is None and sum(votes.values()) < len(committee):
                    break  # wait for more roots
                self.unchecked.pop(0)
                if agreed is not None and agreed != b.root.hex():
                    self._diverge(
                        f"DIVERGED at chunk {b.index} (seq {b.last}): own state root "
                        f"{b.root.hex()} != committee root {agreed}",
                        b.index,
                    )
                    return
