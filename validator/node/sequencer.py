"""Group commit: many client inputs become one chunk of the etcd log, written in one transaction.

Callers ``submit`` a list of encoded messages and get their log position (revision of the chunk,
index of the first message in it) only after etcd has committed the chunk holding them (etcd
answers a write after a quorum has it in its fsynced WAL): an acknowledged input is never lost.

Up to ``max_inflight`` chunks are written at once; whatever arrives while they are in flight goes
into the next chunk, so the chunk size grows with load and the number of etcd transactions does
not. A request's messages are never split across chunks: all or none of them are acknowledged.

A write etcd does not confirm within ``attempt_timeout`` (a proposal forwarded to a leader that
just died is never answered) is retried on the same key until ``deadline`` seconds have passed:
the create-if-absent transaction tells whether an earlier attempt already landed, so a chunk is
logged at most once and the clients waiting on it are acknowledged as soon as the cluster
commits again. Only after the deadline do they get ``EtcdUnavailableError`` (nothing
acknowledged).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from validator.node.errors import EtcdError, EtcdUnavailableError
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.inputlog import chunk_key, encode_chunk, gateway_prefix, key_counter


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
        deadline: float = 3.0,
        attempt_timeout: float = 0.2,
    ) -> None:
        self.etcd = etcd
        self.gateway = gateway
        self.prefix = gateway_prefix(gateway)
        self.max_messages = max_messages
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_inflight)
        self._counter: int | None = None
        """Counter of the next chunk key, None until read from etcd."""
        self.chunks_written = 0
        self.retries = 0

    async def submit(self, lines: list[bytes]) -> tuple[int, int]:
        """Append ``lines`` to the log; (revision, index of the first line), once committed."""
        request = _Request(lines)
        self._queue.append(request)
        self._wake.set()
        return await request.done

    async def run(self) -> None:
        writes: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    await self._slots.acquire()
                    group = self._take()
                    if not group:
                        self._slots.release()
                        break
                    task = asyncio.create_task(self._write(group))
                    writes.add(task)
                    task.add_done_callback(writes.discard)
        finally:
            for task in writes:
                task.cancel()

    def _take(self) -> list[_Request]:
        taken, size = 0, 0
        queue = self._queue
        limit = self.max_messages
        while taken < len(queue) and (size == 0 or size + len(queue[taken].lines) <= limit):
            size += len(queue[taken].lines)
            taken += 1
        group, self._queue = queue[:taken], queue[taken:]
        return group

    async def _write(self, group: list[_Request]) -> None:
        try:
            revision = await self._append(encode_chunk([line for r in group for line in r.lines]))
        except EtcdError as exc:
            for r in group:
                if not r.done.done():
                    r.done.set_exception(exc)
            return
        finally:
            self._slots.release()
        first = 0
        for r in group:
            if not r.done.done():
                r.done.set_result((revision, first))
            first += len(r.lines)

    async def _next_counter(self) -> int:
        if self._counter is None:
            last = await self.etcd.last_key(self.prefix, prefix_end(self.prefix))
            self._counter = 1 if last is None else key_counter(last.key) + 1
        counter = self._counter
        self._counter += 1
        return counter

    async def _append(self, value: bytes) -> int:
        """Write one chunk under a fresh key of this gateway; its revision."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        counter: int | None = None
        while True:
            try:
                if counter is None:
                    counter = await self._next_counter()
                revision, ours = await self.etcd.create(
                    chunk_key(self.gateway, counter), value, self.attempt_timeout
                )
                if ours:
                    self.chunks_written += 1
                    return revision
                counter = None  # another process writes under our id (a restart raced us)
                self._counter = None
                self.retries += 1
            except EtcdError as exc:
                if not isinstance(exc, EtcdUnavailableError) or loop.time() >= give_up:
                    raise
                self.retries += 1
                await asyncio.sleep(0.02)
