"""Responses cached per block: each (endpoint, parameters) is computed once per block and kept
as serialised bytes, so a warm request is a dictionary lookup and never an RPC call.

Concurrent requests for the same key while it is being computed wait for that one computation
(single flight). Entries of older blocks are dropped when a new block is seen. The cache is
bounded in entries and in bytes of cached bodies (least recently used go first; a body larger
than the whole byte budget is answered but not kept), so distinct query keys cannot grow the
process without limit. It lives in one event loop; computations run in worker threads.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import anyio.to_thread

from api.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class Cached:
    """A computed response: the JSON body, or the not-found error the same key gives."""

    body: bytes | None
    error: NotFoundError | None = None


class BlockCache:
    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        """Bytes of the bodies cached now (in-flight computations count once done)."""
        self._sizes: dict[Hashable, int] = {}
        self._block: str | None = None
        self._entries: OrderedDict[Hashable, asyncio.Future[Cached]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(
        self, block_hash: str, key: Hashable, compute: Callable[[], Cached]
    ) -> tuple[Cached, bool]:
        """The entry for ``key`` at this block, computed in a thread if needed; (entry, hit)."""
        if block_hash != self._block:
            self._block = block_hash
            self._entries.clear()
            self._sizes.clear()
            self.bytes = 0
        future = self._entries.get(key)
        if future is not None and future.done():  # the warm path: no task, no thread, no RPC
            self._entries.move_to_end(key)
            return future.result(), True
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._entries[key] = future
            self._evict()
            # A task of its own: a client that disconnects does not cancel it for the others.
            task = asyncio.create_task(self._compute(key, future, compute))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._entries.move_to_end(key)
        return await asyncio.shield(future), False

    async def _compute(
        self, key: Hashable, future: asyncio.Future[Cached], compute: Callable[[], Cached]
    ) -> None:
        try:
            result = await anyio.to_thread.run_sync(compute)
        except Exception as exc:
            # Errors other than "not found" (chain down, node errors) are not cached.
            if self._entries.get(key) is future:
                del self._entries[key]
            future.set_exception(exc)
            future.exception()  # mark retrieved: the waiters re-raise it
        else:
            future.set_result(result)
            if self._entries.get(key) is future:  # still this block's entry
                size = len(result.body or b"")
                if size > self.max_bytes:
                    del self._entries[key]  # answered, never kept
                else:
                    self._sizes[key] = size
                    self.bytes += size
                    self._evict()

    def _evict(self) -> None:
        """Drop the least recently used finished entries until both budgets hold. In-flight
        computations (others may await them; one per key requests are waiting on) are passed
        over, not a stop: one slow computation used to keep every entry behind it, past both
        budgets, until it finished."""
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next((key for key, f in self._entries.items() if f.done()), None)
            if oldest is None:
                break  # only computations in flight are left
            del self._entries[oldest]
            self.bytes -= self._sizes.pop(oldest, 0)
