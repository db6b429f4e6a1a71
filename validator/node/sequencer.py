"""Group commit: many client inputs become one chunk of the etcd log, written in one transaction.

Callers ``submit`` a list of encoded messages and get their log position (revision of the chunk,
index of the first message in it) only after etcd has committed the chunk holding them (etcd
answers a write after a quorum has it in its fsynced WAL): an acknowledged input is never lost.

Up to ``max_inflight`` chunks are written at once; whatever arrives while they are in flight goes
into the next chunk, so the chunk size grows with load and the number of etcd transactions does
not. A request's messages are never split across chunks: all or none of them are acknowledged.
With nothing in flight, whatever waits is written at once. With a write in flight, another starts
only for at least ``pipeline_min`` waiting messages, or once the newest write in flight is older
than ``attempt_timeout`` (a slow commit, an outage: waiting for it is no longer cheap); until
then fewer wait, and go when no write is in flight any more. Across distance a commit waits for
round trips, so pipelining even one message pays (``pipeline_min`` 1, the default); on one host
or a LAN a commit costs CPU (etcd's three members spend about 1 ms per transaction), so a second
transaction for one or two messages only splits the same orders into more, slower transactions.

A write no member confirms within ``attempt_timeout`` (a proposal forwarded to a leader that just
died, a member that is paused or cut off) is sent again, to the same key, through the next member,
every ``attempt_timeout`` until ``deadline`` seconds have passed, while the earlier attempts keep
waiting (hedged: a commit merely slower than ``attempt_timeout``, say over a slow link, still
answers). The create-if-absent transaction tells whether an earlier attempt already landed, so a
chunk is logged at most once and the clients waiting on it are acknowledged as soon as the
cluster commits again.

After the deadline the answer must still be true, and an attempt may sit unanswered in a paused
or cut-off member and commit later. So the sequencer *settles* the key: it writes ``FENCE`` (an
empty chunk) create-if-absent under the same key through any member that answers. Either the
fence wins, and the chunk can never land (``WriteRefusedError``: not acknowledged, never will
be), or it finds the chunk there (acknowledged after all), or no member can commit even that
(``WriteOutcomeUnknownError``: it may still commit; retry with the same client order id).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from validator.node.errors import (
    EtcdError,
    EtcdUnavailableError,
    WriteOutcomeUnknownError,
    WriteRefusedError,
)
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.inputlog import (
    Compression,
    chunk_key,
    counter_bytes,
    encode_chunk,
    floor_key,
    gateway_prefix,
    key_counter,
)

FENCE = encode_chunk([], "zlib")
"""What a gateway writes, create-if-absent, under the key of a chunk write it gave up on: an
empty chunk (nodes apply it as a chunk without messages; in zlib, which nodes of every version
read). Whichever of the two lands first owns
the key for good."""


@dataclass
class _Request:
    lines: list[bytes]
    done: asyncio.Future[tuple[int, int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Resolves to (revision, index in the chunk of the first line)."""


class Sequencer:
    def __init__(
        self,
        etcd: EtcdClient,
        gateway: str,
        max_messages: int = 5_000,
        max_inflight: int = 2,
        pipeline_min: int = 1,
        deadline: float = 3.0,
        attempt_timeout: float = 0.2,
        settle_timeout: float = 1.0,
        max_queued: int = 100_000,
        compression: Compression = "zstd",
    ) -> None:
        self.etcd = etcd
        self.compression: Compression = compression
        self.max_queued = max_queued
        self.queued = 0
        """Messages waiting for a chunk write to take them (not yet in flight)."""
        self.refused_queue_full = 0
        """Requests refused at once because ``max_queued`` messages already waited."""
        self.gateway = gateway
        self.prefix = gateway_prefix(gateway)
        self.floor_key = floor_key(gateway)
        self.max_messages = max_messages
        self.pipeline_min = pipeline_min
        self._writes: dict[asyncio.Task[None], float] = {}
        """Chunk writes in flight, and when each started (the loop's clock)."""
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self.settle_timeout = settle_timeout
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_inflight)
        self._counter: int | None = None
        """Counter of the next chunk key, None until read from etcd."""
        self._resync = False
        """Whether another process wrote under our keys: skip past its last one."""
        self._counter_lock = asyncio.Lock()
        """One reader of the last key at a time: writes starting while it is read (a far
        member's linearizable read takes a round trip to the leader) must wait for it, not read
        it too and take the same key."""
        self.chunks_written = 0
        self.retries = 0
        self.refused = 0
        """Chunk writes given up on for good (no attempt reached a member, or fenced): their clients
        were told it never committed."""
        self.found_after_deadline = 0
        """Chunk writes found committed while settling after the deadline (acknowledged)."""
        self.unknown = 0
        """Chunk writes whose outcome could not be settled (clients told: outcome unknown)."""

    @property
    def writes_in_flight(self) -> int:
        """Chunk writes started and not yet ended."""
        return len(self._writes)

    async def submit(self, lines: list[bytes]) -> tuple[int, int]:
        """Append ``lines`` to the log; (revision, index of the first line), once committed."""
        if self._queue and self.queued + len(lines) > self.max_queued:
            # etcd is not taking writes as fast as they come (an outage, a slow disk): refuse at
            # once rather than hold every client's messages in memory; nothing was sent, so it
            # never commits
            self.refused_queue_full += 1
            raise WriteRefusedError(
                f"{self.queued} messages already wait for etcd at this gateway "
                f"(max_queued_messages {self.max_queued})"
            )
        request = _Request(lines)
        self._queue.append(request)
        self.queued += len(lines)
        self._wake.set()
        return await request.done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    if self._writes and self.queued < self.pipeline_min:
                        # let more gather while waiting is cheap: the end of every write wakes
                        # this loop, and so does the newest write in flight growing older than
                        # one attempt (a slow commit, an outage), past which it no longer is
                        newest = max(self._writes.values())
                        late = newest + self.attempt_timeout - loop.time()
                        if late > 0:
                            if timer is not None:
                                timer.cancel()
                            timer = loop.call_later(late, self._wake.set)
                            break
                    await self._slots.acquire()
                    group = self._take()
                    if not group:
                        self._slots.release()
                        break
                    task = loop.create_task(self._write(group))
                    self._writes[task] = loop.time()
                    task.add_done_callback(functools.partial(self._ended, group))
        finally:
            if timer is not None:
                timer.cancel()
            for task in self._writes:
                task.cancel()
            # never sent: they can never commit
            stopped = WriteRefusedError("the gateway stopped before the chunk was sent")
            for r in self._queue:
                if not r.done.done():
                    r.done.set_exception(stopped)
            self._queue, self.queued = [], 0

    def _ended(self, group: list[_Request], task: asyncio.Task[None]) -> None:
        """A chunk write ended (even one cancelled before it ran): its slot is free again."""
        del self._writes[task]
        self._slots.release()
        self._wake.set()
        if task.cancelled() and not all(r.done.done() for r in group):
            # a write that ran answered its clients itself: this one never ran, sent nothing
            self.refused += 1
            stopped = WriteRefusedError("the gateway stopped before the chunk was sent")
            for r in group:
                if not r.done.done():
                    r.done.set_exception(stopped)

    def _take(self) -> list[_Request]:
        taken, size = 0, 0
        queue = self._queue
        limit = self.max_messages
        while taken < len(queue) and (size == 0 or size + len(queue[taken].lines) <= limit):
            size += len(queue[taken].lines)
            taken += 1
        group, self._queue = queue[:taken], queue[taken:]
        self.queued -= size
        return group

    async def _write(self, group: list[_Request]) -> None:
        try:
            revision = await self._append(
                encode_chunk([line for r in group for line in r.lines], self.compression)
            )
        except asyncio.CancelledError:  # shutting down: answer the clients, then stop
            self.unknown += 1
            stopped = WriteOutcomeUnknownError("the gateway stopped while the chunk was written")
            for r in group:
                if not r.done.done():
                    r.done.set_exception(stopped)
            raise
        except Exception as exc:
            if not isinstance(exc, EtcdError):  # a bug, not etcd: never leave clients waiting
                self.unknown += 1
                exc = WriteOutcomeUnknownError(f"chunk write failed unexpectedly: {exc!r}")
            for r in group:
                if not r.done.done():
                    r.done.set_exception(exc)
            return
        first = 0
        for r in group:
            if not r.done.done():
                r.done.set_result((revision, first))
            first += len(r.lines)

    async def _next_counter(self) -> int:
        async with self._counter_lock:
            if self._counter is None or self._resync:
                # the floor must exist: a write's guard compares its value (etcd fails a value
                # comparison on a missing key)
                await self.etcd.create(self.floor_key, counter_bytes(0))
                floor = await self.etcd.get(self.floor_key)
                if floor is not None and not (len(floor.value) == 20 and floor.value.isdigit()):
                    # bytes order is number order only for 20 digits: every write would be
                    # refused by its guard, or let through below the floor
                    raise EtcdError(
                        f"floor {self.floor_key!r} holds {floor.value[:40]!r}, not a 20-digit "
                        "counter: chunk writes refused until it is repaired"
                    )
                last = await self.etcd.last_key(self.prefix, prefix_end(self.prefix))
                after = max(
                    1 if last is None else key_counter(last.key) + 1,
                    1 if floor is None else int(floor.value) + 1,
                )
                # never back: keys handed to writes still in flight are not in etcd yet
                self._counter = max(after, self._counter or 0)
                self._resync = False
            counter = self._counter
            self._counter += 1
            return counter

    async def _append(self, value: bytes) -> int:
        """Write one chunk under a fresh key of this gateway; its revision."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        counter: int | None = None
        maybe_applied = False
        """Whether an attempt under ``counter`` may have reached a member."""
        while True:
            try:
                if counter is None:
                    counter = await self._next_counter()
                revision, stored = await self.etcd.create_or_read(
                    chunk_key(self.gateway, counter),
                    value,
                    hedge_after=self.attempt_timeout,
                    until=give_up,
                    floor=self._guard(counter),
                )
                if stored == value:  # written now, or by an earlier attempt of ours
                    self.chunks_written += 1
                    return revision
                counter = None  # another process writes under our id (a restart raced us),
                self._resync = True  # or the floor passed our counter: neither can land later
                maybe_applied = False
                self.retries += 1
                if loop.time() >= give_up:
                    self.refused += 1
                    raise WriteRefusedError("every key tried was taken or below the floor")
                await asyncio.sleep(0.02)
            except EtcdError as exc:
                if not isinstance(exc, EtcdUnavailableError):  # refused outright
                    if counter is None or not maybe_applied:
                        raise  # and no earlier attempt can land: not committed
                    return await self._settle(counter, value, exc)
                if counter is not None:
                    maybe_applied = maybe_applied or exc.maybe_applied
                if loop.time() < give_up:
                    self.retries += 1
                    await asyncio.sleep(0.02)
                    continue
                if counter is None or not maybe_applied:
                    self.refused += 1
                    raise WriteRefusedError(f"no attempt reached a member ({exc})") from exc
                return await self._settle(counter, value, exc)

    def _guard(self, counter: int) -> tuple[bytes, bytes]:
        """The write of key ``counter`` goes through only while the floor is below it."""
        return self.floor_key, counter_bytes(counter)

    async def _settle(self, counter: int, value: bytes, cause: EtcdError) -> int:
        """Decide the fate of a chunk write not confirmed by the deadline: fence its key."""
        key = chunk_key(self.gateway, counter)
        loop = asyncio.get_running_loop()
        try:
            revision, stored = await self.etcd.create_or_read(
                key,
                FENCE,
                hedge_after=self.attempt_timeout,
                until=loop.time() + self.settle_timeout,
                floor=self._guard(counter),
            )
        except EtcdError as exc:  # unreachable, or the fence itself refused: still unknown
            self.unknown += 1
            raise WriteOutcomeUnknownError(
                f"not confirmed within {self.deadline}s ({cause}) and not fenced ({exc})"
            ) from exc
        if stored is None:  # the key is gone (compacted, the floor past it): whatever it held
            # is unknowable, but no late attempt can create it again
            self.unknown += 1
            raise WriteOutcomeUnknownError(f"chunk key {key!r} vanished while settling")
        if stored == value:  # an earlier attempt landed after all
            self.chunks_written += 1
            self.found_after_deadline += 1
            return revision
        self.refused += 1
        raise WriteRefusedError(
            f"not confirmed within {self.deadline}s ({cause}); fenced at revision {revision}"
        )
