"""Order entry: new orders, cancels and cancel-replaces, with their checks.

Checks run in a fixed order and the first failure is the rejection reason:
series known, series trading, tick, lot, account known, client order id unused, client order
id within the account's id-range budget, post-only would not cross, collateral. A rejected order
changes nothing.

Collateral is checked once, up front, for the whole order at its limit price
as if it all rested: the buyer must have ``price * qty * multiplier`` free, an
uncovered seller the extra collateral of the larger short. Fills at better
prices, and premium received, only leave more cash free, so the account still
covers its ``required`` after the order (``matching.py`` has the proof sketch).

This is the hot path. A new order that does not cross, and a cancel, are
handled here without calls: ``Book.rest``, ``Book.remove`` and the ledger's
reservation and release are inlined (profiling put each call at ~5% of an
order's cost). Orders that cross, IOCs and replacements go to ``matching``.
"""

from __future__ import annotations

from bisect import insort
from typing import Final

from msgspec.structs import astuple

from validator.engine.accounts import MAX_ID_RANGES
from validator.engine.book import COMPACT_SLACK, Level
from validator.engine.matching import execute, remove
from validator.engine.messages import Cancel, CancelReplace, NewOrder
from validator.engine.primitives import AccountId, OrderKind, SeriesId, Side
from validator.engine.records import Holding, Order
from validator.engine.results import ACCEPTED, REJECTED, RejectReason, Result
from validator.engine.state import State

# Final: the compiled engine keeps these in C variables, not in the module's dictionary.
_UNKNOWN_SERIES: Final = REJECTED[RejectReason.UNKNOWN_SERIES]
_EXPIRED_SERIES: Final = REJECTED[RejectReason.EXPIRED_SERIES]
_BAD_TICK: Final = REJECTED[RejectReason.BAD_TICK]
_BAD_LOT: Final = REJECTED[RejectReason.BAD_LOT]
_UNKNOWN_ACCOUNT: Final = REJECTED[RejectReason.UNKNOWN_ACCOUNT]
_DUPLICATE_ORDER_ID: Final = REJECTED[RejectReason.DUPLICATE_ORDER_ID]
_TOO_MANY_ORDER_ID_GAPS: Final = REJECTED[RejectReason.TOO_MANY_ORDER_ID_GAPS]
_POST_ONLY_WOULD_CROSS: Final = REJECTED[RejectReason.POST_ONLY_WOULD_CROSS]
_INSUFFICIENT_COLLATERAL: Final = REJECTED[RejectReason.INSUFFICIENT_COLLATERAL]
_UNKNOWN_ORDER: Final = REJECTED[RejectReason.UNKNOWN_ORDER]
_ACCEPTED: Final = ACCEPTED

_BUY: Final = Side.BUY
_NOTHING: Final = Holding()
"""Read-only stand-in for a holding not created yet (a rejected order must not create one)."""
_GTC: Final = OrderKind.GTC
_IOC: Final = OrderKind.IOC
_POST_ONLY: Final = OrderKind.POST_ONLY
_insort: Final = insort
_astuple: Final = astuple


def new_order(state: State, msg: NewOrder) -> Result:
    """Check, match and (for GTC and post-only) rest a new order.

    Steps: the checks that need neither side nor book (series known, series
    trading, tick, lot, account known, client order id unused); per side, whether
    it crosses and what it needs free; the post-only and collateral checks; then
    the id is used and the order goes to ``matching.execute`` if it crosses or is
    an IOC, else it is reserved for and rested right here.

    Every step is written inline, not as a helper: on this path one more Python
    call costs ~3% of the instructions per input of ``bench/bench_engine.py``
    (cachegrind), more than the whole of any check. The message's fields are read
    in one call (``astuple``): compiled code reads a struct's attribute through
    Python's generic lookup, seven times the cost of that one call.
    """
    account_id: AccountId
    order_id: int
    series_id: SeriesId
    side_: Side
    price: int
    qty: int
    kind: OrderKind
    account_id, order_id, series_id, side_, price, qty, kind = _astuple(msg)
    # The checks that need neither side nor book, in order.
    series = state.series_by_id.get(series_id)
    if series is None:
        return _UNKNOWN_SERIES
    if not series.trading:
        return _EXPIRED_SERIES
    if price <= 0 or price % series.tick:
        return _BAD_TICK
    if qty <= 0 or qty % series.lot:
        return _BAD_LOT
    account = state.accounts_by_id.get(account_id)
    if account is None:
        return _UNKNOWN_ACCOUNT
    id_ends = account.id_ends
    if id_ends and order_id <= id_ends[-1] and account.id_used(order_id):
        return _DUPLICATE_ORDER_ID
    if len(id_ends) >= MAX_ID_RANGES and account.opens_id_range(order_id):
        return _TOO_MANY_ORDER_ID_GAPS
    # Per side: does it cross, and what must be free (``need``) for it all to rest.
    book = series.book
    index = series.index
    holdings = account.holdings
    holding = holdings.get(index)
    if side_ is _BUY:
        side = 1
        keys = book.ask_keys
        crosses = -keys[-1] <= price if keys else False
        need = price * qty * series.multiplier  # the premium at the limit price
    else:
        side = 0
        keys = book.bid_keys
        crosses = keys[-1] >= price if keys else False
        held = _NOTHING if holding is None else holding
        short = held.open_sell + qty - held.pos
        collateral = series.max_payout * short if short > 0 else 0  # of the larger short
        need = collateral - held.collateral
    # The last two checks.
    if crosses and kind is _POST_ONLY:
        return _POST_ONLY_WOULD_CROSS
    if need > account.cash - account.required:
        return _INSUFFICIENT_COLLATERAL
    # Accepted: use the id (``Account.use_id``, the common case inlined), then match or rest.
    account.changed = True  # its used ids change, and the book may (see ``snapshot.dump``)
    series.changed = True
    if id_ends and order_id == id_ends[-1] + 1:
        id_ends[-1] = order_id
    else:
        account.use_id(order_id)
    if holding is None:
        holding = holdings[index] = Holding()
    if crosses or kind is _IOC:
        return execute(state, series, book, account, holding, order_id, side, price, qty, kind)
    # Reserve (``matching.rest``, inlined) ...
    key: int
    if side:
        holding.buy_reserve += need
        levels, keys, key = book.bids, book.bid_keys, price
    else:
        holding.open_sell += qty
        holding.collateral = collateral
        levels, keys, key = book.asks, book.ask_keys, -price
    account.required += need
    post_only = 1 if kind is _POST_ONLY else 0
    order = Order(qty, price, account.index, order_id, index, side, post_only, holding)
    # ... and rest at the back of its level (``Book.rest``, inlined).
    level = levels.get(price)
    if level is None:
        levels[price] = Level(order)
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            _insort(keys, key)
    else:
        level.orders.append(order)
        level.live += 1
    account.orders[order_id] = order
    return _ACCEPTED


def cancel(state: State, msg: Cancel) -> Result:
    """Cancel the rest of a resting order and release what it reserved.

    ``ledger.release`` and ``Book.remove``, inlined: cancels are a third of the flow.
    """
    account = state.accounts_by_id.get(msg.account)
    if account is None:
        return _UNKNOWN_ACCOUNT
    orders = account.orders
    order_id = msg.order_id
    order = orders.get(order_id)
    if order is None:
        return _UNKNOWN_ORDER
    del orders[order_id]
    series = state.series[order.series]
    series.changed = True  # the book changes; what the snapshot writes of the account does not
    holding = order.holding
    qty = order.qty
    price = order.price
    book = series.book
    if order.is_buy:
        premium = price * qty * series.multiplier
        holding.buy_reserve -= premium
        account.required -= premium
        level = book.bids[price]
    else:
        open_sell = holding.open_sell - qty
        holding.open_sell = open_sell
        short = open_sell - holding.pos
        collateral = series.max_payout * short if short > 0 else 0
        account.required += collateral - holding.collateral
        holding.collateral = collateral
        level = book.asks[price]
    if not (holding.pos or holding.open_sell or holding.buy_reserve):
        del account.holdings[order.series]  # keep only holdings that hold something
    order.qty = 0
    live = level.live - 1
    if live:
        level.live = live
        if len(level.orders) > 2 * live + COMPACT_SLACK:
            level.compact()
    else:
        book.drop_level(order.is_buy, price)
    return _ACCEPTED


def cancel_replace(state: State, msg: CancelReplace) -> Result:
    """Replace a resting order by a new one at a new price and quantity, atomically.

    The replacement keeps the series, side and kind (GTC or post-only) of the
    original, takes a new client order id and goes to the back of the queue at
    its price (time priority is always lost). Checks are those of a new order,
    with the collateral check counting the original's reservation as free; on
    any rejection the original order is untouched.
    """
    account_id: AccountId
    order_id: int
    new_id: int
    price: int
    qty: int
    account_id, order_id, new_id, price, qty = _astuple(msg)
    account = state.accounts_by_id.get(account_id)
    if account is None:
        return _UNKNOWN_ACCOUNT
    old = account.orders.get(order_id)
    if old is None:
        return _UNKNOWN_ORDER
    series = state.series[old.series]
    if price <= 0 or price % series.tick:
        return _BAD_TICK
    if qty <= 0 or qty % series.lot:
        return _BAD_LOT
    id_ends = account.id_ends
    if new_id <= id_ends[-1] and account.id_used(new_id):  # an order rests: it used an id
        return _DUPLICATE_ORDER_ID
    if len(id_ends) >= MAX_ID_RANGES and account.opens_id_range(new_id):
        return _TOO_MANY_ORDER_ID_GAPS
    is_buy = old.is_buy
    book = series.book
    if old.post_only:
        if is_buy:
            keys = book.ask_keys
            crosses = -keys[-1] <= price if keys else False
        else:
            keys = book.bid_keys
            crosses = keys[-1] >= price if keys else False
        if crosses:
            return _POST_ONLY_WOULD_CROSS
    holding = old.holding
    if is_buy:
        need = (price * qty - old.price * old.qty) * series.multiplier
    else:
        short = holding.open_sell - old.qty + qty - holding.pos
        need = (series.max_payout * short if short > 0 else 0) - holding.collateral
    if need > account.cash - account.required:
        return _INSUFFICIENT_COLLATERAL
    remove(book, account, series, old)
    account.changed = True
    series.changed = True
    if new_id == id_ends[-1] + 1:  # ``Account.use_id``, the common case inlined
        id_ends[-1] = new_id
    else:
        account.use_id(new_id)
    kind = _POST_ONLY if old.post_only else _GTC
    return execute(state, series, book, account, holding, new_id, is_buy, price, qty, kind)
