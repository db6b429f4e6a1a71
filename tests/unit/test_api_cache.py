"""The per-block response cache: one computation per key and block, even under concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from api.cache import BlockCache, Cached
from api.errors import FacilityNotFoundError
from redundancy.errors import ChainUnreachableError


def test_concurrent_misses_compute_once_and_later_hits_do_not_compute() -> None:
    calls = []

    def compute() -> Cached:
        calls.append(threading.get_ident())
        time.sleep(0.05)
        return Cached(b"{}")

    async def scenario() -> list[bool]:
        cache = BlockCache()
        results = await asyncio.gather(*(cache.get("0xaa", "k", compute) for _ in range(20)))
        hit = await cache.get("0xaa", "k", compute)
        return [h for _, h in results] + [hit[1]]

    hits = asyncio.run(scenario())
    assert len(calls) == 1
    assert hits[-1] is True and not any(hits[:-1])


def test_a_new_block_drops_the_old_entries() -> None:
    async def scenario() -> int:
        cache = BlockCache()
        await cache.get("0xaa", "k", lambda: Cached(b"1"))
        await cache.get("0xaa", "j", lambda: Cached(b"2"))
        entry, hit = await cache.get("0xbb", "k", lambda: Cached(b"3"))
        assert (entry.body, hit) == (b"3", False)
        return len(cache)

    assert asyncio.run(scenario()) == 1


def test_not_found_is_cached_but_chain_errors_are_not() -> None:
    calls = {"n": 0}

    def down() -> Cached:
        calls["n"] += 1
        raise ChainUnreachableError("http://127.0.0.1:1", "Connection refused")

    async def scenario() -> None:
        cache = BlockCache()
        missing = Cached(None, FacilityNotFoundError("x"))
        await cache.get("0xaa", "f", lambda: missing)
        assert (await cache.get("0xaa", "f", lambda: Cached(b"no")))[0] is missing
        for _ in range(2):
            with pytest.raises(ChainUnreachableError):
                await cache.get("0xaa", "g", down)

    asyncio.run(scenario())
    assert calls["n"] == 2


def test_the_cache_keeps_at_most_max_entries() -> None:
    async def scenario() -> int:
        cache = BlockCache(max_entries=16)
        for i in range(40):
            await cache.get("0xaa", i, lambda i=i: Cached(str(i).encode()))
        return len(cache)

    assert asyncio.run(scenario()) == 16


def test_cached_bytes_stay_within_the_budget_and_an_oversized_body_is_not_kept() -> None:
    """Distinct query keys (pages, filters) must not grow the process without bound."""
    body = b"x" * 1000

    async def scenario() -> tuple[int, int, bool, int]:
        cache = BlockCache(max_entries=10_000, max_bytes=10 * 1000)
        for i in range(500):
            await cache.get("0xaa", ("page", i), lambda: Cached(body))
        kept, used = len(cache), cache.bytes
        _, hit_oldest = await cache.get("0xaa", ("page", 0), lambda: Cached(body))
        huge, _ = await cache.get("0xaa", "huge", lambda: Cached(b"y" * 20_000))
        again, hit_huge = await cache.get("0xaa", "huge", lambda: Cached(b"y" * 20_000))
        return kept, used, hit_oldest or hit_huge, len(huge.body or b"") + len(again.body or b"")

    kept, used, any_hit, served = asyncio.run(scenario())
    assert (kept, used) == (10, 10_000)  # the newest ten pages, exactly the budget
    assert not any_hit  # the oldest page was evicted; the huge body was never kept
    assert served == 40_000  # but it was answered both times


def test_one_slow_computation_does_not_hold_the_budgets_open() -> None:
    """Found by review: eviction stopped at the least recently used entry while it was still
    being computed, so behind one slow request (a full-history log query) every finished entry
    was kept: 2,000 fast 100 KB keys grew a 1 MB cache to 200 MB until the slow one ended."""
    release = threading.Event()

    def slow() -> Cached:
        release.wait(10)
        return Cached(b"slow")

    async def scenario() -> tuple[int, int, Cached]:
        cache = BlockCache(max_entries=100, max_bytes=1_000_000)
        pending = asyncio.create_task(cache.get("0xaa", "slow", slow))
        await asyncio.sleep(0.05)
        most = 0
        for i in range(2_000):
            await cache.get("0xaa", i, lambda: Cached(b"x" * 100_000))
            most = max(most, cache.bytes)
        entries = len(cache)
        release.set()
        entry, _ = await pending
        return most, entries, entry

    most, entries, entry = asyncio.run(scenario())
    assert most <= 1_000_000 and entries <= 100
    assert entry.body == b"slow"  # the one in flight was never dropped
