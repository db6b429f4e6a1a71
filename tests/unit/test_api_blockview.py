"""``BlockView.once``: each value computed once per block, concurrent callers of one key wait for
it, and different keys are computed at the same time (found by review: one lock held across
every chain call made every miss at a block wait for every other)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest

from api.blockview import BlockView
from api.reader import ChainReader, Head


def view() -> BlockView:
    return BlockView(cast(ChainReader, None), Head(7, "0x" + "ab" * 32, 0))


def test_different_keys_are_computed_at_the_same_time() -> None:
    v = view()
    both = threading.Barrier(2, timeout=5)  # broken (an error) unless both run at once

    def compute(name: str) -> str:
        both.wait()
        return name

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda k: v.once(k, lambda: compute(k)), ["a", "b"]))
    assert got == ["a", "b"]


def test_one_key_is_computed_once_however_many_ask() -> None:
    v = view()
    calls: list[int] = []
    go = threading.Event()

    def compute() -> int:
        calls.append(1)
        go.wait(5)
        return 42

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(v.once, "k", compute) for _ in range(8)]
        go.set()
        assert [f.result(timeout=10) for f in futures] == [42] * 8
    assert len(calls) == 1
    assert v.once("k", lambda: 0) == 42  # memoised


def test_a_failure_is_not_kept_and_a_waiter_tries_itself() -> None:
    v = view()
    started, release = threading.Event(), threading.Event()
    attempts: list[str] = []

    def failing() -> int:
        attempts.append("first")
        started.set()
        release.wait(5)
        raise ConnectionError("chain down")

    def working() -> int:
        attempts.append("second")
        return 5

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(v.once, "k", failing)
        started.wait(5)
        second = pool.submit(v.once, "k", working)  # waits for the first, then tries itself
        release.set()
        with pytest.raises(ConnectionError):
            first.result(timeout=10)
        assert second.result(timeout=10) == 5
    assert attempts == ["first", "second"]


def test_a_value_may_be_computed_from_another() -> None:
    v = view()
    assert v.once("outer", lambda: v.once("inner", lambda: 3) + 1) == 4
    assert v.once("inner", lambda: 0) == 3
