"""Order book of one series: price levels indexed by integer price, FIFO within a level.

Layout, chosen for speed both in CPython and compiled by mypyc (see ``bench/bench_engine.py``):

- A resting order is an ``Order`` record (``records.py``): integer fields and its holding.
- Each side is a ``dict`` price -> ``Level`` plus a sorted list of *keys* whose
  **last** element is the best price: bids are keyed by ``price``, asks by
  ``-price``. Taking or dropping the best level is ``list.pop()``; a new level
  near the touch is a short ``insort``.
- A level is a plain ``list`` of records in time order read from a ``head``
  index: taking the front order is ``head += 1``, so the level needs no deque
  (which compiled code could only call through Python's method protocol).
- Cancels are lazy: the record's quantity becomes 0 and the level's ``live``
  count drops; dead records are skipped when they reach the front and a level
  is compacted when its records (dead, live, or already taken from the front)
  outnumber twice its live ones, so a cancel or a fill is O(1) amortised
  however deep the level. Empty levels are removed at once, so a side holds
  exactly the prices that have live orders.

The matching loops in ``matching.py``, and the inlined rest and cancel paths in
``orders.py``, work on these fields directly; ``Book``'s methods are the
readable reference for what they do.

Module constants are ``Final`` so that the compiled engine inlines them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Final

from validator.engine.records import Order

COMPACT_SLACK: Final = 4
"""A level is compacted when it holds more than ``2 * live + COMPACT_SLACK`` records."""


class Level:
    """Orders resting at one price: ``orders[head:]`` oldest first, of which ``live`` are not
    dead. Every record before ``head`` is dead (taken from the front or cancelled)."""

    __slots__ = ("head", "live", "orders")

    def __init__(self, order: Order) -> None:
        """A level holding one live order (a level is never empty)."""
        self.orders = [order]
        self.head = 0
        self.live = 1

    def compact(self) -> None:
        """Drop dead records, keeping the live ones in time order."""
        self.orders = [order for order in self.orders if order.qty]
        self.head = 0

    def records(self) -> list[Order]:
        """The records from the front on, dead ones included."""
        return self.orders[self.head :]


class Book:
    """Both sides of one series' book."""

    __slots__ = ("ask_keys", "asks", "bid_keys", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, Level] = {}
        self.bid_keys: list[int] = []
        """Bid prices, ascending: the best bid is last."""
        self.asks: dict[int, Level] = {}
        self.ask_keys: list[int] = []
        """Negated ask prices, ascending: the best (lowest) ask is last."""

    def best_bid(self) -> int | None:
        """Highest bid price, or None if there are no bids."""
        return self.bid_keys[-1] if self.bid_keys else None

    def best_ask(self) -> int | None:
        """Lowest ask price, or None if there are no asks."""
        return -self.ask_keys[-1] if self.ask_keys else None

    def rest(self, order: Order) -> None:
        """Append ``order`` at the back of its price level."""
        price = order.price
        if order.is_buy:
            levels, keys, key = self.bids, self.bid_keys, price
        else:
            levels, keys, key = self.asks, self.ask_keys, -price
        level = levels.get(price)
        if level is None:
            levels[price] = Level(order)
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        else:
            level.orders.append(order)
            level.live += 1

    def remove(self, order: Order) -> None:
        """Take a live ``order`` out of the book (lazily; see the module doc)."""
        order.qty = 0
        price = order.price
        levels = self.bids if order.is_buy else self.asks
        level = levels[price]
        live = level.live - 1
        if live:
            level.live = live
            if len(level.orders) > 2 * live + COMPACT_SLACK:
                level.compact()
        else:
            self.drop_level(order.is_buy, price)

    def drop_level(self, is_buy: int, price: int) -> None:
        """Remove the level at ``price`` (with any dead records in it)."""
        if is_buy:
            levels, keys, key = self.bids, self.bid_keys, price
        else:
            levels, keys, key = self.asks, self.ask_keys, -price
        del levels[price]
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def orders(self, is_buy: int) -> Iterator[Order]:
        """Live orders of one side in priority order: best price first, then oldest first."""
        levels, keys = (self.bids, self.bid_keys) if is_buy else (self.asks, self.ask_keys)
        for key in reversed(keys):
            for order in levels[key if is_buy else -key].records():
                if order.qty:
                    yield order

    def depth(self, is_buy: int) -> list[tuple[int, int]]:
        """``(price, total quantity)`` per level of one side, best first."""
        levels, keys = (self.bids, self.bid_keys) if is_buy else (self.asks, self.ask_keys)
        out = []
        for key in reversed(keys):
            price = key if is_buy else -key
            out.append((price, sum(order.qty for order in levels[price].records())))
        return out

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask (must never happen)."""
        return bool(self.bid_keys and self.ask_keys and self.bid_keys[-1] >= -self.ask_keys[-1])
