"""Settlement ledger: accounts with cash, positions, and what their orders and shorts lock.

For each account the ledger keeps ``cash`` and ``required``, the part of that
cash that is spoken for; ``cash - required`` is what a new order, or a
withdrawal, may use. The invariant ``0 <= required <= cash`` holds after every
input. ``required`` is the sum over the account's series of:

- the premium reserved by its resting buys, at their limit prices, and
- the collateral of the series: ``max_payout * max(0, open_sell - position)``,
  the short the account would hold if every resting sell filled and no buy did.
  A sell against a long position is covered and locks nothing.

Collateral stays in the account's cash (it is not moved to a pool), so premium
transfers and settlement are the only things that move cash between accounts
and the sum of all cash changes only on deposits and withdrawals.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from validator.engine.instruments import Series
from validator.engine.primitives import AccountId, OrderId
from validator.engine.records import Holding, Order

MAX_ID_RANGES: Final = 4_096
"""Separate ranges an account's used client order ids may form: an id that would start one more
is refused (``too_many_order_id_gaps``). Recording an id that starts a range inserts into a
list, so without a bound one account numbering its orders backwards (each a cheap IOC that does
not trade) made every node's cost per order grow with the number of its orders."""


class Account:
    """One account; ``index`` is its slot in the engine's account table."""

    __slots__ = (
        "cash",
        "changed",
        "holdings",
        "id",
        "id_ends",
        "id_starts",
        "index",
        "orders",
        "required",
        "snap",
    )

    def __init__(self, index: int, account_id: AccountId) -> None:
        self.index = index
        self.id = account_id
        self.cash = 0
        self.required = 0
        """Cash locked as collateral or reserved by resting buys."""
        self.holdings: dict[int, Holding] = {}
        """Series index -> holding record."""
        self.orders: dict[int, Order] = {}
        """Client order id -> resting order record."""
        # Every client order id this account has had accepted, as sorted,
        # disjoint, non-adjacent ranges id_starts[i]..id_ends[i]: memory grows
        # with the gaps between ids, not with their number. A client numbering
        # its orders consecutively only ever extends the last range, which the
        # hot path does inline.
        self.id_starts: list[int] = []
        self.id_ends: list[int] = []
        self.snap = b""
        """The account's part of the snapshot as last written (``snapshot.dump``)..."""
        self.changed = True
        """... unless this is set: every change to the account's cash, positions or used ids
        sets it."""

    @property
    def available(self) -> int:
        """Cash free for new orders and withdrawals."""
        return self.cash - self.required

    def holding(self, series_index: int) -> Holding:
        """The account's holding record in a series, created empty if absent."""
        holding = self.holdings.get(series_index)
        if holding is None:
            holding = self.holdings[series_index] = Holding()
        return holding

    def position(self, series_index: int) -> int:
        """Signed position in a series."""
        holding = self.holdings.get(series_index)
        return holding.pos if holding else 0

    def id_used(self, order_id: int) -> bool:
        """True if the account has had an order with this client id accepted."""
        i = bisect_right(self.id_starts, order_id) - 1
        return i >= 0 and order_id <= self.id_ends[i]

    def opens_id_range(self, order_id: int) -> bool:
        """True if recording this unused id would start a range of its own (it is adjacent to
        no used id)."""
        starts, ends = self.id_starts, self.id_ends
        i = bisect_right(starts, order_id)
        joins_left = i > 0 and ends[i - 1] == order_id - 1
        joins_right = i < len(starts) and starts[i] == order_id + 1
        return not (joins_left or joins_right)

    def use_id(self, order_id: int) -> None:
        """Record an accepted client order id (which must be unused)."""
        starts, ends = self.id_starts, self.id_ends
        i = bisect_right(starts, order_id)  # ranges before i start at or below order_id
        joins_left = i > 0 and ends[i - 1] == order_id - 1
        joins_right = i < len(starts) and starts[i] == order_id + 1
        if joins_left and joins_right:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif joins_left:
            ends[i - 1] = order_id
        elif joins_right:
            starts[i] = order_id
        else:
            starts.insert(i, order_id)
            ends.insert(i, order_id)

    def used_id_ranges(self) -> list[list[int]]:
        """The used client order ids as sorted, maximal ``[first, last]`` ranges."""
        return [[first, last] for first, last in zip(self.id_starts, self.id_ends, strict=True)]

    def order_ids(self) -> list[OrderId]:
        """Ids of the account's resting orders, ascending."""
        return sorted(OrderId(oid) for oid in self.orders)


def refresh_collateral(account: Account, holding: Holding, max_payout: int) -> None:
    """Recompute a holding's collateral after its position or open sells changed."""
    short = holding.open_sell - holding.pos
    collateral = max_payout * short if short > 0 else 0
    account.required += collateral - holding.collateral
    holding.collateral = collateral


def release(account: Account, series: Series, order: Order) -> None:
    """Release what a resting order's remaining quantity reserved (it is being cancelled)."""
    holding = order.holding
    if order.is_buy:
        premium = order.price * order.qty * series.multiplier
        holding.buy_reserve -= premium
        account.required -= premium
    else:
        holding.open_sell -= order.qty
        refresh_collateral(account, holding, series.max_payout)
