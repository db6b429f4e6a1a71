"""A series' life outside the order book: listing, settlement price, expiry.

Expiry runs in two steps, because the oracle's settlement price is usually
published after trading stops:

1. ``Expire(underlying, expiry)`` stops trading in every series of that expiry
   and cancels their resting orders, releasing what they reserved.
2. Once the expiry has stopped trading *and* has a settlement price (whichever
   input comes second), every position is cash-settled: the long side receives
   ``position * payout_per_contract`` and the short side pays it, then positions
   are closed and their collateral released. The payouts of a series sum to zero
   because its positions do.

Results list cancelled orders and payouts in a canonical order (series id, then
account id, then book priority), never in an order that depends on internal
indices or dictionary history.
"""

from __future__ import annotations

from validator.engine.accounts import Account, release
from validator.engine.book import Book
from validator.engine.instruments import ExpiryGroup, ExpiryState, Series, listing_problem
from validator.engine.messages import Expire, ListSeries, SettlementPrice
from validator.engine.records import Holding
from validator.engine.results import (
    ACCEPTED,
    REJECTED,
    CancelledOrder,
    Payout,
    RejectReason,
    Result,
)
from validator.engine.state import State


def list_series(state: State, msg: ListSeries) -> Result:
    """List a series; its expiry group is created on first use."""
    if msg.series in state.series_by_id:
        return REJECTED[RejectReason.DUPLICATE_SERIES]
    problem = listing_problem(msg)
    if problem is not None:
        return REJECTED[problem]
    key = (msg.underlying, msg.expiry)
    group = state.expiries.get(key)
    if group is None:
        group = state.expiries[key] = ExpiryGroup(msg.underlying, msg.expiry)
    elif group.state is not ExpiryState.TRADING:
        return REJECTED[RejectReason.EXPIRED_SERIES]
    state.add_series(Series(len(state.series), msg), group)
    return ACCEPTED


def settlement_price(state: State, msg: SettlementPrice) -> Result:
    """Record (or revise) an expiry's settlement price; settle if trading already stopped."""
    if msg.price < 0:
        return REJECTED[RejectReason.BAD_PRICE]
    group = state.expiries.get((msg.underlying, msg.expiry))
    if group is None:
        return REJECTED[RejectReason.UNKNOWN_SERIES]
    if group.state is ExpiryState.SETTLED:
        return REJECTED[RejectReason.ALREADY_SETTLED]
    group.price = msg.price
    if group.state is ExpiryState.EXPIRED:
        return Result(payouts=_settle(state, group))
    return ACCEPTED


def expire(state: State, msg: Expire) -> Result:
    """Stop trading an expiry, cancel its resting orders, and settle if priced."""
    group = state.expiries.get((msg.underlying, msg.expiry))
    if group is None:
        return REJECTED[RejectReason.UNKNOWN_SERIES]
    if group.state is not ExpiryState.TRADING:
        return REJECTED[RejectReason.EXPIRED_SERIES]
    cancelled: list[CancelledOrder] = []
    for series in sorted(group.series, key=_series_id):
        series.trading = False
        cancelled.extend(_cancel_all(state, series))
    group.state = ExpiryState.EXPIRED
    payouts = _settle(state, group) if group.price is not None else ()
    if not cancelled and not payouts:
        return ACCEPTED
    return Result(cancelled=tuple(cancelled), payouts=payouts)


def _series_id(series: Series) -> str:
    return series.id


def _cancel_all(state: State, series: Series) -> list[CancelledOrder]:
    """Cancel every resting order of a series: bids then asks, each in priority order."""
    book = series.book
    cancelled = []
    for is_buy in (1, 0):
        for order in book.orders(is_buy):
            account = state.accounts[order.account]
            cancelled.append(CancelledOrder(account.id, order.order_id, order.qty))
            release(account, series, order)
            del account.orders[order.order_id]
    series.book = Book()  # its part of the snapshot is not marked stale: an expired series'
    return cancelled  # book stays empty for good, and ``snapshot.dump`` skips empty books


def _settle(state: State, group: ExpiryGroup) -> tuple[Payout, ...]:
    """Cash-settle every position of an expired group at its settlement price."""
    assert group.price is not None
    payouts = []
    # The holders of each series, found by one pass over the accounts that looks only at the
    # holdings each has (before: every account for every series, a second per input at a
    # million accounts and a hundred series); paid in series id, then account id order.
    held: dict[int, list[tuple[Account, Holding]]] = {series.index: [] for series in group.series}
    for account in state.accounts:
        holdings = account.holdings
        if holdings:
            for index in [index for index in holdings if index in held]:
                held[index].append((account, holdings.pop(index)))
                account.changed = True  # its positions (and below, its cash) change
    for series in sorted(group.series, key=_series_id):
        per_contract = series.payout_per_contract(group.price)
        for account, holding in sorted(held[series.index], key=_account_id):
            # Orders were cancelled at expiry, so only the position remains.
            account.required -= holding.collateral
            if holding.pos:
                amount = holding.pos * per_contract
                account.cash += amount
                payouts.append(Payout(series.id, account.id, holding.pos, amount))
    group.state = ExpiryState.SETTLED
    return tuple(payouts)


def _account_id(held: tuple[Account, Holding]) -> str:
    return held[0].id
