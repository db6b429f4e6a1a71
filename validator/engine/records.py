"""The engine's mutable records: a resting order, and one account's holding in one series.

Both are final classes with integer fields (and the order a reference to its holding). Compiled
by mypyc, an integer field is a machine word inside the object: reading one is a load, and
updating one allocates nothing (the ``list[int]`` records they replace cost a call and a
reference-count update on a boxed integer elsewhere in memory per read, and a new boxed integer
per large value written).

Both are ``acyclic``: they can be in no reference cycle (a holding refers to nothing, an order
to its holding only), so the compiled classes are left out of CPython's cyclic garbage
collector. Every resting order used to be one more object for it to track: with the
collector on (as in a node), collections came every few hundred orders and each walked the
resting orders; apply with the default collector ran at less than half its rate with the
collector off, and now within a few per cent of it (``bench/bench_engine.py``). The pure
classes are tracked as any Python object is.
"""

from __future__ import annotations

from typing import final

from mypy_extensions import mypyc_attr


@final
@mypyc_attr(acyclic=True)
class Holding:
    """One account's stake in one series, updated in place by the order paths."""

    __slots__ = ("buy_reserve", "collateral", "open_sell", "pos")

    def __init__(self) -> None:
        self.pos = 0
        """Signed position in contracts (negative: short)."""
        self.open_sell = 0
        """Contracts offered by the account's resting sells."""
        self.buy_reserve = 0
        """Premium reserved by the account's resting buys."""
        self.collateral = 0
        """``max_payout * max(0, open_sell - pos)``, cached."""

    def fields(self) -> list[int]:
        """``[pos, open_sell, buy_reserve, collateral]``, for messages and tests."""
        return [self.pos, self.open_sell, self.buy_reserve, self.collateral]


@final
@mypyc_attr(acyclic=True)
class Order:
    """A resting order: what is left of it, where it rests, and whose it is. The matching loops
    (``matching.py``) and the inlined paths of ``orders.py`` read and write its fields directly;
    it refers to no other order and no level, so records make no reference cycles."""

    __slots__ = (
        "account",
        "holding",
        "is_buy",
        "order_id",
        "post_only",
        "price",
        "qty",
        "series",
    )

    def __init__(
        self,
        qty: int,
        price: int,
        account: int,
        order_id: int,
        series: int,
        is_buy: int,
        post_only: int,
        holding: Holding,
    ) -> None:
        self.qty = qty
        """Remaining quantity; 0 once filled or cancelled (the record is then dead)."""
        self.price = price
        """Limit price."""
        self.account = account
        """Account index in the engine's account table."""
        self.order_id = order_id
        """Client order id."""
        self.series = series
        """Series index."""
        self.is_buy = is_buy
        """1 for a buy, 0 for a sell."""
        self.post_only = post_only
        """1 for a post-only order, 0 for GTC."""
        self.holding = holding
        """The account's holding in the series, ``accounts[account].holdings[series]``, reached
        by cancels and fills without a lookup. A holding is dropped only when it holds nothing
        (no position, no resting order: a cancel drops it) or its expiry settles (after every
        order of the series was cancelled); so while the order rests it is its account's
        holding (``audit`` checks it)."""
