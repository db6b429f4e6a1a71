"""Input messages: everything that changes the venue's state arrives as one of these.

The engine is a pure function of the ordered sequence of messages. Who may send
what (for example that only the operator lists series or publishes settlement
prices) is decided before a message enters the log, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class ListSeries:
    """List a new option series. ``cap`` is the settlement cap of a call (see
    ``instruments``) and must be 0 for a put."""

    series: SeriesId
    underlying: Underlying
    expiry: Expiry
    option_type: OptionType
    strike: Price
    multiplier: int
    tick: Price
    lot: Quantity
    cap: Price = Price(0)  # noqa: RUF009 - a constant, evaluated once


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credit cash to an account, opening it if new."""

    account: AccountId
    amount: Cash


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Debit cash from an account; only cash not locked as collateral or reserved
    for open orders can leave."""

    account: AccountId
    amount: Cash


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A limit order (GTC, IOC or post-only) in one series."""

    account: AccountId
    order_id: OrderId
    series: SeriesId
    side: Side
    price: Price
    qty: Quantity
    kind: OrderKind = OrderKind.GTC


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the rest of a resting order."""

    account: AccountId
    order_id: OrderId


@dataclass(frozen=True, slots=True)
class CancelReplace:
    """Atomically cancel a resting order and enter a new one (same series, side and
    kind) under a new client order id; if the new order is rejected the old one stays."""

    account: AccountId
    order_id: OrderId
    new_order_id: OrderId
    price: Price
    qty: Quantity


@dataclass(frozen=True, slots=True)
class SettlementPrice:
    """The oracle's settlement price for one underlying at one expiry. May be
    revised until the expiry is settled."""

    underlying: Underlying
    expiry: Expiry
    price: Price


@dataclass(frozen=True, slots=True)
class Expire:
    """Stop trading every series of one underlying and expiry: resting orders are
    cancelled, and positions are cash-settled as soon as a settlement price is known."""

    underlying: Underlying
    expiry: Expiry


Message = (
    ListSeries | Deposit | Withdraw | NewOrder | Cancel | CancelReplace | SettlementPrice | Expire
)
"""Any input message."""
