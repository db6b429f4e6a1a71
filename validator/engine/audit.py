"""Audit: recompute everything derived from primary state and report every mismatch.

Used by the property tests after every input, by ``snapshot.load`` before it
accepts a snapshot, and available to a validator node as a self-check. It
returns every problem it finds, not just the first.
"""

from __future__ import annotations

from collections import defaultdict

from validator.engine.book import Book
from validator.engine.instruments import ExpiryState
from validator.engine.records import Order
from validator.engine.state import State


def audit(state: State) -> list[str]:
    """Every inconsistency in ``state``; empty when the state is sound."""
    problems: list[str] = []
    resting: dict[tuple[int, int], Order] = {}
    for series in state.series:
        book = series.book
        problems.extend(f"series {series.id}: {p}" for p in _book_problems(book))
        for is_buy in (1, 0):
            for order in book.orders(is_buy):
                where = f"series {series.id}: order {order.account}/{order.order_id}"
                resting[(order.account, order.order_id)] = order
                if order.series != series.index or order.is_buy != is_buy:
                    problems.append(f"{where} is filed on the wrong book or side")
                if order.price <= 0 or order.price % series.tick:
                    problems.append(f"{where} price {order.price} is off the tick")
                if order.qty <= 0 or order.qty % series.lot:
                    problems.append(f"{where} quantity {order.qty} is off the lot")
                if not series.trading:
                    problems.append(f"{where} rests in a series that stopped trading")
    positions: dict[int, int] = defaultdict(int)
    for account in state.accounts:
        where = f"account {account.id}"
        open_sell: dict[int, int] = defaultdict(int)
        buy_reserve: dict[int, int] = defaultdict(int)
        for order_id, order in account.orders.items():
            if resting.pop((account.index, order_id), None) is not order:
                problems.append(f"{where}: order {order_id} is indexed but not in its book")
                continue
            if not account.id_used(order_id):
                problems.append(f"{where}: resting order {order_id} has an unused id")
            if order.holding is not account.holdings.get(order.series):
                problems.append(f"{where}: resting order {order_id} is not tied to its holding")
            series = state.series[order.series]
            if order.is_buy:
                buy_reserve[order.series] += order.price * order.qty * series.multiplier
            else:
                open_sell[order.series] += order.qty
        required = 0
        for index, holding in account.holdings.items():
            series = state.series[index]
            positions[index] += holding.pos
            short = open_sell[index] - holding.pos
            collateral = series.max_payout * short if short > 0 else 0
            if holding.fields()[1:] != [open_sell[index], buy_reserve[index], collateral]:
                problems.append(
                    f"{where}: series {series.id} holding {holding.fields()} expected "
                    f"open_sell={open_sell[index]} buy_reserve={buy_reserve[index]} "
                    f"collateral={collateral}"
                )
            required += buy_reserve[index] + collateral
            group = state.expiries[(series.underlying, series.expiry)]
            if group.state is ExpiryState.SETTLED:
                problems.append(f"{where}: holds series {series.id} after it settled")
        if set(open_sell) - set(account.holdings) or set(buy_reserve) - set(account.holdings):
            problems.append(f"{where}: orders in a series it has no holding in")
        if account.required != required:
            problems.append(f"{where}: required {account.required} != recomputed {required}")
        if account.cash < 0:
            problems.append(f"{where}: negative cash {account.cash}")
        if not 0 <= account.required <= account.cash:
            problems.append(f"{where}: required {account.required} not within cash {account.cash}")
    for account_index, order_id in resting:
        problems.append(f"order {account_index}/{order_id} rests but is not indexed by its account")
    for index, total in sorted(positions.items()):
        if total:
            problems.append(f"series {state.series[index].id}: positions sum to {total}, not 0")
    return problems


def _book_problems(book: Book) -> list[str]:
    problems = []
    if book.is_crossed():
        problems.append(f"book crossed: bid {book.best_bid()} >= ask {book.best_ask()}")
    for name, levels, keys, sign in (
        ("bid", book.bids, book.bid_keys, 1),
        ("ask", book.asks, book.ask_keys, -1),
    ):
        if sorted(set(keys)) != keys or {sign * key for key in keys} != set(levels):
            problems.append(f"{name} price index does not match its levels")
        for price, level in levels.items():
            records = level.records()
            live = sum(1 for order in records if order.qty)
            if any(order.price != price for order in records):
                problems.append(f"{name} level {price} holds an order at another price")
            if any(order.qty for order in level.orders[: level.head]):
                problems.append(f"{name} level {price} has a live order behind its front")
            if live != level.live or not live:
                problems.append(f"{name} level {price} counts {level.live} live, holds {live}")
    return problems
