"""Order book of one series: price levels indexed by integer price, FIFO within a level.

Layout, chosen for speed in CPython (see ``bench/bench_engine.py``):

- A resting order is a small ``list[int]`` record (fields ``Q``..``K`` below), not
  an object: one allocation, index access, no ``__init__`` call.
- Each side is a ``dict`` price -> ``Level`` (a ``deque`` of records in time
  order) plus a sorted list of *keys* whose **last** element is the best price:
  bids are keyed by ``price``, asks by ``-price``. Taking or dropping the best
  level is ``list.pop()``; a new level near the touch is a short ``insort``.
- Cancels are lazy: the record's quantity becomes 0 and the level's ``live``
  count drops; dead records are skipped when they reach the front and a level
  is compacted when dead records outnumber live ones, so a cancel is O(1)
  amortised however deep the level. Empty levels are removed at once, so a side
  holds exactly the prices that have live orders.

The matching loops in ``matching.py``, and the inlined rest and cancel paths in
``orders.py``, work on these fields directly; ``Book``'s methods are the
readable reference for what they do.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator

# Fields of a resting-order record.
Q = 0
"""Remaining quantity; 0 once filled or cancelled (the record is then dead)."""
P = 1
"""Limit price."""
A = 2
"""Account index in the engine's account table."""
O = 3  # noqa: E741 - short on purpose, like the others
"""Client order id."""
S = 4
"""Series index."""
B = 5
"""1 for a buy, 0 for a sell."""
K = 6
"""1 for a post-only order, 0 for GTC."""

Order = list[int]
"""A resting-order record: ``[qty, price, account, order_id, series, is_buy, post_only]``."""

COMPACT_SLACK = 4
"""A level is compacted when it holds more than ``2 * live + COMPACT_SLACK`` records."""


class Level(deque[Order]):
    """Orders resting at one price, oldest first; ``live`` counts the ones not dead.

    No ``__init__`` (it would triple the cost of creating a level): whoever
    creates a level sets ``live`` at once.
    """

    __slots__ = ("live",)
    live: int

    def compact(self) -> None:
        """Drop dead records, keeping the live ones in time order."""
        alive = [order for order in self if order[Q]]
        self.clear()
        self.extend(alive)


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
        price = order[P]
        if order[B]:
            levels, keys, key = self.bids, self.bid_keys, price
        else:
            levels, keys, key = self.asks, self.ask_keys, -price
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level()
            level.live = 0
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        level.append(order)
        level.live += 1

    def remove(self, order: Order) -> None:
        """Take a live ``order`` out of the book (lazily; see the module doc)."""
        order[Q] = 0
        price = order[P]
        levels = self.bids if order[B] else self.asks
        level = levels[price]
        live = level.live - 1
        if live:
            level.live = live
            if len(level) > 2 * live + COMPACT_SLACK:
                level.compact()
        else:
            self.drop_level(order[B], price)

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
            for order in levels[key if is_buy else -key]:
                if order[Q]:
                    yield order

    def depth(self, is_buy: int) -> list[tuple[int, int]]:
        """``(price, total quantity)`` per level of one side, best first."""
        levels, keys = (self.bids, self.bid_keys) if is_buy else (self.asks, self.ask_keys)
        out = []
        for key in reversed(keys):
            price = key if is_buy else -key
            out.append((price, sum(order[Q] for order in levels[price])))
        return out

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask (must never happen)."""
        return bool(self.bid_keys and self.ask_keys and self.bid_keys[-1] >= -self.ask_keys[-1])
