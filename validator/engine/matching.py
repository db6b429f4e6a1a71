"""Matching: an order that passed its checks trades against the book, then rests or is dropped.

Price-time priority at the maker's price. Self-trade prevention cancels the
*resting* order and matching goes on. What is left of a GTC or post-only order
rests; what is left of an IOC is dropped. A GTC order rests only after taking
every order it crosses, so the book is never crossed.

Why the up-front collateral check (``orders.py``) is enough: a buyer checked
``limit * qty * multiplier`` free; fills cost at most the limit and its
remainder reserves exactly the limit, and a bigger long can only shrink its
short collateral. A seller checked the collateral of a short as large as if all
``qty`` were sold; whether a contract is sold now or rests, it counts in
``open_sell - position`` once, and premium received only adds cash. Self-trade
cancels only release reservations.

The loops walk the book's and ledger's records directly (see ``book.py``).
"""

from __future__ import annotations

from typing import Final

from validator.engine.accounts import Account, refresh_collateral, release
from validator.engine.book import COMPACT_SLACK, Book
from validator.engine.instruments import Series
from validator.engine.primitives import OrderKind
from validator.engine.records import Holding, Order
from validator.engine.results import ACCEPTED, CancelledOrder, Fill, Result
from validator.engine.state import State

_IOC: Final = OrderKind.IOC
_POST_ONLY: Final = OrderKind.POST_ONLY
_new_tuple: Final = tuple.__new__

_ACCEPTED: Final = ACCEPTED
_Fill: Final = Fill
_Result: Final = Result
"""``Fill`` and ``Result`` are built with ``tuple.__new__``: a third cheaper than
calling the named tuple class, which matters once per trade."""


def execute(
    state: State,
    series: Series,
    book: Book,
    account: Account,
    holding: Holding,
    order_id: int,
    is_buy: int,
    price: int,
    qty: int,
    kind: OrderKind,
) -> Result:
    """Match an order that passed every check, then rest or drop what is left."""
    fills: list[Fill] = []
    cancelled: list[CancelledOrder] = []
    if is_buy:
        keys = book.ask_keys
        if keys and -keys[-1] <= price:
            qty = _lift_asks(state, series, book, account, holding, price, qty, fills, cancelled)
    else:
        keys = book.bid_keys
        if keys and keys[-1] >= price:
            qty = _hit_bids(state, series, book, account, holding, price, qty, fills, cancelled)
    if qty and kind is not _IOC:
        post_only = 1 if kind is _POST_ONLY else 0
        order = Order(qty, price, account.index, order_id, series.index, is_buy, post_only, holding)
        rest(book, account, series, order)
    if fills or cancelled:
        return _new_tuple(_Result, (None, tuple(fills), tuple(cancelled), ()))
    return _ACCEPTED


def rest(book: Book, account: Account, series: Series, order: Order) -> None:
    """Reserve for an order (in its holding), put it at the back of its level and index it by
    client id."""
    holding = order.holding
    if order.is_buy:
        premium = order.price * order.qty * series.multiplier
        holding.buy_reserve += premium
        account.required += premium
    else:
        holding.open_sell += order.qty
        refresh_collateral(account, holding, series.max_payout)
    book.rest(order)
    account.orders[order.order_id] = order


def remove(book: Book, account: Account, series: Series, order: Order) -> None:
    """Cancel a resting order: release its reservation, drop it from the account's index
    and (lazily) from the book."""
    release(account, series, order)
    del account.orders[order.order_id]
    book.remove(order)


def _lift_asks(
    state: State,
    series: Series,
    book: Book,
    taker: Account,
    holding: Holding,
    limit: int,
    qty: int,
    fills: list[Fill],
    cancelled: list[CancelledOrder],
) -> int:
    """Buy up to ``qty`` from asks priced at most ``limit``; return the quantity left."""
    levels, keys, accounts = book.asks, book.ask_keys, state.accounts
    multiplier = series.multiplier
    while qty and keys and -keys[-1] <= limit:
        price = -keys[-1]
        level = levels[price]
        orders, head = level.orders, level.head
        while qty and head < len(orders):
            maker = orders[head]
            available = maker.qty
            if not available:
                head += 1
                continue
            seller = accounts[maker.account]
            if seller is taker:
                _cancel_own(taker, series, maker, cancelled)
                head += 1
                level.live -= 1
                continue
            fill = available if available < qty else qty
            premium = price * fill * multiplier
            taker.cash -= premium
            seller.cash += premium
            seller.changed = True  # the caller marked the taker and the book
            holding.pos += fill
            maker_holding = maker.holding
            maker_holding.pos -= fill  # the sell's collateral now backs the short:
            maker_holding.open_sell -= fill  # COLLATERAL is unchanged
            fills.append(_new_tuple(_Fill, (seller.id, maker.order_id, price, fill)))
            qty -= fill
            if fill == available:
                maker.qty = 0
                head += 1
                level.live -= 1
                del seller.orders[maker.order_id]
            else:
                maker.qty = available - fill
        if level.live:
            level.head = head
            if len(orders) > 2 * level.live + COMPACT_SLACK:
                level.compact()
        else:
            del levels[price]
            keys.pop()
    if holding.collateral:  # a bigger position can only shrink the short
        refresh_collateral(taker, holding, series.max_payout)
    return qty


def _hit_bids(
    state: State,
    series: Series,
    book: Book,
    taker: Account,
    holding: Holding,
    limit: int,
    qty: int,
    fills: list[Fill],
    cancelled: list[CancelledOrder],
) -> int:
    """Sell up to ``qty`` to bids priced at least ``limit``; return the quantity left."""
    levels, keys, accounts = book.bids, book.bid_keys, state.accounts
    multiplier, max_payout = series.multiplier, series.max_payout
    while qty and keys and keys[-1] >= limit:
        price = keys[-1]
        level = levels[price]
        orders, head = level.orders, level.head
        while qty and head < len(orders):
            maker = orders[head]
            available = maker.qty
            if not available:
                head += 1
                continue
            buyer = accounts[maker.account]
            if buyer is taker:
                _cancel_own(taker, series, maker, cancelled)
                head += 1
                level.live -= 1
                continue
            fill = available if available < qty else qty
            premium = price * fill * multiplier
            taker.cash += premium
            buyer.cash -= premium
            buyer.changed = True  # the caller marked the taker and the book
            holding.pos -= fill
            maker_holding = maker.holding
            maker_holding.pos += fill
            maker_holding.buy_reserve -= premium  # reserved at this very price
            buyer.required -= premium
            if maker_holding.collateral:
                refresh_collateral(buyer, maker_holding, max_payout)
            fills.append(_new_tuple(_Fill, (buyer.id, maker.order_id, price, fill)))
            qty -= fill
            if fill == available:
                maker.qty = 0
                head += 1
                level.live -= 1
                del buyer.orders[maker.order_id]
            else:
                maker.qty = available - fill
        if level.live:
            level.head = head
            if len(orders) > 2 * level.live + COMPACT_SLACK:
                level.compact()
        else:
            del levels[price]
            keys.pop()
    refresh_collateral(taker, holding, max_payout)
    return qty


def _cancel_own(account: Account, series: Series, maker: Order, out: list[CancelledOrder]) -> None:
    """Self-trade prevention: cancel the taker's own resting order at the front of its level
    (the caller moves past it and counts it out of the level)."""
    out.append(CancelledOrder(account.id, maker.order_id, maker.qty))
    release(account, series, maker)
    del account.orders[maker.order_id]
    maker.qty = 0
