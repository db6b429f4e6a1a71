"""Shared helpers of the validator-core tests: listings, order builders, assertions."""

from __future__ import annotations

import json

from validator.engine import Engine
from validator.engine.messages import Deposit, ListSeries, NewOrder
from validator.engine.primitives import (
    AccountId,
    Cash,
    Expiry,
    OptionType,
    OrderId,
    OrderKind,
    Price,
    Quantity,
    SeriesId,
    Side,
    Underlying,
)
from validator.engine.results import Result

FUNDS = 1_000_000
"""Cash every funded account starts with."""

PUT = ListSeries(
    SeriesId("BTC-100-1000-P"),
    Underlying("BTC"),
    Expiry(100),
    OptionType.PUT,
    strike=Price(1000),
    multiplier=1,
    tick=Price(5),
    lot=Quantity(1),
)
"""Put, strike 1000, tick 5, lot 1, multiplier 1: an uncovered short locks 1000 per contract."""

CALL = ListSeries(
    SeriesId("BTC-100-1000-C"),
    Underlying("BTC"),
    Expiry(100),
    OptionType.CALL,
    strike=Price(1000),
    multiplier=1,
    tick=Price(5),
    lot=Quantity(1),
    cap=Price(1500),
)
"""Call, strike 1000 capped at 1500: an uncovered short locks 500 per contract."""

ETH_PUT = ListSeries(
    SeriesId("ETH-200-300-P"),
    Underlying("ETH"),
    Expiry(200),
    OptionType.PUT,
    strike=Price(300),
    multiplier=10,
    tick=Price(2),
    lot=Quantity(5),
)
"""Put with multiplier 10 and lot 5, in another expiry."""

PENNY = ListSeries(
    SeriesId("BTC-100-900-P"),
    Underlying("BTC"),
    Expiry(100),
    OptionType.PUT,
    strike=Price(900),
    multiplier=1,
    tick=Price(1),
    lot=Quantity(1),
)
"""A put with a tick of 1: a price of 1 is on the tick."""


def order(
    account: str,
    order_id: int,
    side: Side,
    price: int,
    qty: int,
    kind: OrderKind = OrderKind.GTC,
    series: ListSeries = PUT,
) -> NewOrder:
    """A new order, with the domain types filled in."""
    return NewOrder(
        AccountId(account),
        OrderId(order_id),
        series.series,
        side,
        Price(price),
        Quantity(qty),
        kind,
    )


def buy(
    account: str,
    order_id: int,
    price: int,
    qty: int,
    kind: OrderKind = OrderKind.GTC,
    series: ListSeries = PUT,
) -> NewOrder:
    """A buy order."""
    return order(account, order_id, Side.BUY, price, qty, kind, series)


def sell(
    account: str,
    order_id: int,
    price: int,
    qty: int,
    kind: OrderKind = OrderKind.GTC,
    series: ListSeries = PUT,
) -> NewOrder:
    """A sell order."""
    return order(account, order_id, Side.SELL, price, qty, kind, series)


def deposit(account: str, amount: int) -> Deposit:
    """A deposit."""
    return Deposit(AccountId(account), Cash(amount))


def accepted(result: Result) -> Result:
    """Assert the result is an acceptance and return it."""
    assert result.reason is None, result
    return result


def state_without_seq(engine: Engine) -> object:
    """The engine's snapshot as data, without the sequence number: what a rejection must
    leave unchanged."""
    data = json.loads(engine.snapshot())
    del data["seq"]
    return data


def funded_engine() -> Engine:
    """An engine with PUT, CALL and ETH_PUT listed and alice, bob, carol funded."""
    engine = Engine()
    for listing in (PUT, CALL, ETH_PUT):
        accepted(engine.apply(listing))
    for name in ("alice", "bob", "carol"):
        accepted(engine.apply(deposit(name, FUNDS)))
    return engine
