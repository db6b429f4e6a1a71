"""Order entry and matching: new orders, cancels and cancel-replaces.

Checks run in a fixed order and the first failure is the rejection reason:
series known, series trading, tick, lot, account known, client order id unused,
post-only would not cross, collateral. A rejected order changes nothing.

Matching is price-time priority at the maker's price. Self-trade prevention
cancels the *resting* order and matching continues. Whatever is left of a GTC
or post-only order rests; whatever is left of an IOC is dropped. A GTC order
rests only after taking every crossing order, so the book is never crossed.

Collateral is checked once, up front, for the whole order at its limit price
as if it all rested: the buyer must have ``price * qty * multiplier`` free, an
uncovered seller the extra collateral of the larger short. Fills at better
prices, and premium received, only leave more cash free, so the account still
covers its ``required`` after the order.

This is the hot path: the loops below work on the book's and ledger's records
directly and avoid calls and allocations where they can.
"""

from __future__ import annotations

from validator.book import A, B, Book, K, Level, O, Order, P, Q, S
from validator.domain import OrderKind, Side
from validator.instruments import Series
from validator.ledger import (
    BUY_RESERVE,
    COLLATERAL,
    OPEN_SELL,
    POS,
    Account,
    Holding,
    extra_sell_collateral,
    refresh_collateral,
    release,
    reserve,
)
from validator.messages import Cancel, CancelReplace, NewOrder
from validator.results import ACCEPTED, REJECTED, CancelledOrder, Fill, RejectReason, Result
from validator.state import State

_UNKNOWN_SERIES = REJECTED[RejectReason.UNKNOWN_SERIES]
_EXPIRED_SERIES = REJECTED[RejectReason.EXPIRED_SERIES]
_BAD_TICK = REJECTED[RejectReason.BAD_TICK]
_BAD_LOT = REJECTED[RejectReason.BAD_LOT]
_UNKNOWN_ACCOUNT = REJECTED[RejectReason.UNKNOWN_ACCOUNT]
_DUPLICATE_ORDER_ID = REJECTED[RejectReason.DUPLICATE_ORDER_ID]
_POST_ONLY_WOULD_CROSS = REJECTED[RejectReason.POST_ONLY_WOULD_CROSS]
_INSUFFICIENT_COLLATERAL = REJECTED[RejectReason.INSUFFICIENT_COLLATERAL]
_UNKNOWN_ORDER = REJECTED[RejectReason.UNKNOWN_ORDER]

_BUY = Side.BUY
_IOC = OrderKind.IOC
_POST_ONLY = OrderKind.POST_ONLY


def new_order(state: State, msg: NewOrder) -> Result:
    """Check, match and (for GTC and post-only) rest a new order."""
    series = state.series_by_id.get(msg.series)
    if series is None:
        return _UNKNOWN_SERIES
    if not series.trading:
        return _EXPIRED_SERIES
    price = msg.price
    if price <= 0 or price % series.tick:
        return _BAD_TICK
    qty = msg.qty
    if qty <= 0 or qty % series.lot:
        return _BAD_LOT
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return _UNKNOWN_ACCOUNT
    order_id = msg.order_id
    if order_id in account.used_ids:
        return _DUPLICATE_ORDER_ID
    is_buy = msg.side is _BUY
    book = state.books[series.index]
    kind = msg.kind
    if kind is _POST_ONLY and _crosses(book, is_buy, price):
        return _POST_ONLY_WOULD_CROSS
    holding = account.holdings.get(series.index)
    if holding is None:
        holding = account.holdings[series.index] = [0, 0, 0, 0]
    if is_buy:
        need = price * qty * series.multiplier
    else:
        need = extra_sell_collateral(holding, qty, series.max_payout)
    if need > account.cash - account.required:
        return _INSUFFICIENT_COLLATERAL
    account.used_ids.add(order_id)
    return _execute(state, series, book, account, holding, order_id, is_buy, price, qty, kind)


def cancel(state: State, msg: Cancel) -> Result:
    """Cancel the rest of a resting order and release what it reserved."""
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return _UNKNOWN_ACCOUNT
    order = account.orders.pop(msg.order_id, None)
    if order is None:
        return _UNKNOWN_ORDER
    release(account, state.series[order[S]], order)
    state.books[order[S]].remove(order)
    return ACCEPTED


def cancel_replace(state: State, msg: CancelReplace) -> Result:
    """Replace a resting order by a new one at a new price and quantity, atomically.

    The replacement keeps the series, side and kind (GTC or post-only) of the
    original, takes a new client order id and goes to the back of the queue at
    its price (time priority is always lost). Checks are those of a new order,
    with the collateral check counting the original's reservation as free; on
    any rejection the original order is untouched.
    """
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return _UNKNOWN_ACCOUNT
    old = account.orders.get(msg.order_id)
    if old is None:
        return _UNKNOWN_ORDER
    series = state.series[old[S]]
    price = msg.price
    if price <= 0 or price % series.tick:
        return _BAD_TICK
    qty = msg.qty
    if qty <= 0 or qty % series.lot:
        return _BAD_LOT
    new_id = msg.new_order_id
    if new_id in account.used_ids:
        return _DUPLICATE_ORDER_ID
    is_buy = old[B]
    book = state.books[series.index]
    if old[K] and _crosses(book, is_buy, price):
        return _POST_ONLY_WOULD_CROSS
    holding = account.holdings[series.index]
    if is_buy:
        need = (price * qty - old[P] * old[Q]) * series.multiplier
    else:
        need = extra_sell_collateral(holding, qty - old[Q], series.max_payout)
    if need > account.cash - account.required:
        return _INSUFFICIENT_COLLATERAL
    del account.orders[msg.order_id]
    release(account, series, old)
    book.remove(old)
    account.used_ids.add(new_id)
    kind = _POST_ONLY if old[K] else OrderKind.GTC
    return _execute(state, series, book, account, holding, new_id, is_buy, price, qty, kind)


def _crosses(book: Book, is_buy: int, price: int) -> bool:
    """True if an order at ``price`` would meet the opposite side."""
    if is_buy:
        keys = book.ask_keys
        return bool(keys) and -keys[-1] <= price
    keys = book.bid_keys
    return bool(keys) and keys[-1] >= price


def _execute(
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
        order: Order = [qty, price, account.index, order_id, series.index, is_buy, post_only]
        book.rest(order)
        account.orders[order_id] = order
        reserve(account, holding, series, order)
    if fills or cancelled:
        return Result(None, tuple(fills), tuple(cancelled))
    return ACCEPTED


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
    multiplier, index = series.multiplier, series.index
    while qty and keys and -keys[-1] <= limit:
        price = -keys[-1]
        level = levels[price]
        while qty and level:
            maker = level[0]
            available = maker[Q]
            if not available:
                level.popleft()
                continue
            seller = accounts[maker[A]]
            if seller is taker:
                _cancel_own(taker, series, level, maker, cancelled)
                continue
            fill = available if available < qty else qty
            premium = price * fill * multiplier
            taker.cash -= premium
            seller.cash += premium
            holding[POS] += fill
            maker_holding = seller.holdings[index]
            maker_holding[POS] -= fill  # the sell's collateral now backs the short:
            maker_holding[OPEN_SELL] -= fill  # COLLATERAL is unchanged
            fills.append(Fill(seller.id, maker[O], price, fill))
            qty -= fill
            if fill == available:
                maker[Q] = 0
                level.popleft()
                level.live -= 1
                del seller.orders[maker[O]]
            else:
                maker[Q] = available - fill
        if not level.live:
            del levels[price]
            keys.pop()
    if holding[COLLATERAL]:  # a bigger position can only shrink the short
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
    multiplier, index, max_payout = series.multiplier, series.index, series.max_payout
    while qty and keys and keys[-1] >= limit:
        price = keys[-1]
        level = levels[price]
        while qty and level:
            maker = level[0]
            available = maker[Q]
            if not available:
                level.popleft()
                continue
            buyer = accounts[maker[A]]
            if buyer is taker:
                _cancel_own(taker, series, level, maker, cancelled)
                continue
            fill = available if available < qty else qty
            premium = price * fill * multiplier
            taker.cash += premium
            buyer.cash -= premium
            holding[POS] -= fill
            maker_holding = buyer.holdings[index]
            maker_holding[POS] += fill
            maker_holding[BUY_RESERVE] -= premium  # reserved at this very price
            buyer.required -= premium
            if maker_holding[COLLATERAL]:
                refresh_collateral(buyer, maker_holding, max_payout)
            fills.append(Fill(buyer.id, maker[O], price, fill))
            qty -= fill
            if fill == available:
                maker[Q] = 0
                level.popleft()
                level.live -= 1
                del buyer.orders[maker[O]]
            else:
                maker[Q] = available - fill
        if not level.live:
            del levels[price]
            keys.pop()
    refresh_collateral(taker, holding, max_payout)
    return qty


def _cancel_own(
    account: Account, series: Series, level: Level, maker: Order, out: list[CancelledOrder]
) -> None:
    """Self-trade prevention: cancel the taker's own resting order at the front of ``level``."""
    out.append(CancelledOrder(account.id, maker[O], maker[Q]))
    release(account, series, maker)
    del account.orders[maker[O]]
    maker[Q] = 0
    level.popleft()
    level.live -= 1
