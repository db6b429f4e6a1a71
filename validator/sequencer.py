"""Group commit: many client inputs become one chunk of the etcd log, written in one transaction.

Callers ``submit`` a list of encoded messages and get their log sequences back only after etcd
has committed the chunk holding them (etcd answers a write after a quorum has it in its fsynced
WAL): an acknowledged input is never lost. One write is in flight at a time; whatever arrives
meanwhile goes into the next chunk, so the chunk size grows with load and the number of etcd
transactions does not. A request's messages are never split across chunks: all or none of them
are acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from validator.errors import EtcdError, EtcdUnavailableError
from validator.etcd import EtcdClient, prefix_end
from validator.log import LOG, Chunk, chunk_index, chunk_key


@dataclass
class _Request:
    lines: list[bytes]
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Resolves to the sequence of the first line."""


class Sequencer:
    def __init__(self, etcd: EtcdClient, max_messages: int = 5_000, conflict_retries: int = 50):
        self.etcd = etcd
        self.max_messages = max_messages
        self.conflict_retries = conflict_retries
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._next: tuple[int, int] | None = None
        """(next chunk index, its first sequence), None when it must be read from etcd."""
        self.chunks_written = 0
        self.conflicts = 0

    async def submit(self, lines: list[bytes]) -> int:
        """Append ``lines`` to the log; the sequence of the first, once committed."""
        request = _Request(lines)
        self._queue.append(request)
        self._wake.set()
        return await request.done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                taken, size = 0, 0
                while taken < len(self._queue) and (
                    size == 0 or size + len(self._queue[taken].lines) <= self.max_messages
                ):
                    size += len(self._queue[taken].lines)
                    taken += 1
                group, self._queue = self._queue[:taken], self._queue[taken:]
                try:
                    first = await self._append([line for r in group for line in r.lines])
                except EtcdError as exc:
                    for r in group:
                        if not r.done.done():
                            r.done.set_exception(exc)
                    continue
                for r in group:
                    if not r.done.done():
                        r.done.set_result(first)
                    first += len(r.lines)

    async def _tail(self) -> tuple[int, int]:
        last = await self.etcd.last_key(LOG, prefix_end(LOG))
        if last is None:
            return 1, 1
        chunk = Chunk.decode(chunk_index(last.key), last.value)
        return chunk.index + 1, chunk.last + 1

    async def _append(self, lines: list[bytes]) -> int:
        for _ in range(self.conflict_retries):
            try:
                if self._next is None:
                    self._next = await self._tail()
                index, first = self._next
                revision = await self.etcd.create(
                    chunk_key(index), Chunk(index, first, lines).encode()
                )
            except EtcdError:
                self._next = None  # the write may or may not have happened: read the tail again
                raise
            if revision is not None:
                self._next = (index + 1, first + len(lines))
                self.chunks_written += 1
                return first
            self.conflicts += 1  # another gateway wrote this index first
            self._next = None
        raise EtcdUnavailableError(f"gave up after {self.conflict_retries} index conflicts")
