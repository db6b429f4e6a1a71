"""Input messages: everything that changes the venue's state arrives as one of these.

The engine is a pure function of the ordered sequence of messages. Who may send
what (for example that only the operator lists series or publishes settlement
prices) is decided before a message enters the log, not here.

Each message is a frozen ``msgspec.Struct`` tagged by its wire ``type``: the node decodes a log
line straight into one, with every wire rule checked in C (``codec.py``). The ``Annotated``
bounds are those wire rules (strings of 1-64 characters, integers in a signed 64-bit word);
they are checked when decoding, not when a message is built in Python. The structs hold no
references to other objects, so they are kept out of the cyclic garbage collector
(``gc=False``).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from validator.engine.primitives import (
    INT_LIMIT,
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

MAX_STRING = 64
"""Longest string on the wire, in characters."""

_TEXT = Meta(min_length=1, max_length=MAX_STRING)
_INT64 = Meta(ge=-INT_LIMIT + 1, le=INT_LIMIT - 1)


class _Message(Struct, frozen=True, gc=False, tag_field="type", forbid_unknown_fields=True):
    """Base of the input messages (no fields of its own)."""


class ListSeries(_Message, tag="list_series", frozen=True):
    """List a new option series. ``cap`` is the settlement cap of a call (see
    ``instruments``) and must be 0 for a put."""

    series: Annotated[SeriesId, _TEXT]
    underlying: Annotated[Underlying, _TEXT]
    expiry: Annotated[Expiry, _INT64]
    option_type: OptionType
    strike: Annotated[Price, _INT64]
    multiplier: Annotated[int, _INT64]
    tick: Annotated[Price, _INT64]
    lot: Annotated[Quantity, _INT64]
    cap: Annotated[Price, _INT64] = Price(0)


class Deposit(_Message, tag="deposit", frozen=True, omit_defaults=True):
    """Credit cash to an account, opening it if new. A non-zero ``request_id`` makes it
    idempotent: it is one of the account's client ids (shared with its order ids), used once,
    so a second copy is rejected (``duplicate_request_id``); 0 means none (every copy applies)
    and is left out of the line (``omit_defaults``: a transfer without an id is the same bytes
    as before the field existed, so nodes that predate it read it alike)."""

    account: Annotated[AccountId, _TEXT]
    amount: Annotated[Cash, _INT64]
    request_id: Annotated[OrderId, _INT64] = OrderId(0)


class Withdraw(_Message, tag="withdraw", frozen=True, omit_defaults=True):
    """Debit cash from an account; only cash not locked as collateral or reserved
    for open orders can leave. ``request_id`` as for a deposit."""

    account: Annotated[AccountId, _TEXT]
    amount: Annotated[Cash, _INT64]
    request_id: Annotated[OrderId, _INT64] = OrderId(0)


class NewOrder(_Message, tag="order", frozen=True):
    """A limit order (GTC, IOC or post-only) in one series."""

    account: Annotated[AccountId, _TEXT]
    order_id: Annotated[OrderId, _INT64]
    series: Annotated[SeriesId, _TEXT]
    side: Side
    price: Annotated[Price, _INT64]
    qty: Annotated[Quantity, _INT64]
    kind: OrderKind = OrderKind.GTC


class Cancel(_Message, tag="cancel", frozen=True):
    """Cancel the rest of a resting order."""

    account: Annotated[AccountId, _TEXT]
    order_id: Annotated[OrderId, _INT64]


class CancelReplace(_Message, tag="replace", frozen=True):
    """Atomically cancel a resting order and enter a new one (same series, side and
    kind) under a new client order id; if the new order is rejected the old one stays."""

    account: Annotated[AccountId, _TEXT]
    order_id: Annotated[OrderId, _INT64]
    new_order_id: Annotated[OrderId, _INT64]
    price: Annotated[Price, _INT64]
    qty: Annotated[Quantity, _INT64]


class SettlementPrice(_Message, tag="settlement_price", frozen=True):
    """The oracle's settlement price for one underlying at one expiry. May be
    revised until the expiry is settled."""

    underlying: Annotated[Underlying, _TEXT]
    expiry: Annotated[Expiry, _INT64]
    price: Annotated[Price, _INT64]


class Expire(_Message, tag="expire", frozen=True):
    """Stop trading every series of one underlying and expiry: resting orders are
    cancelled, and positions are cash-settled as soon as a settlement price is known."""

    underlying: Annotated[Underlying, _TEXT]
    expiry: Annotated[Expiry, _INT64]


Message = (
    ListSeries | Deposit | Withdraw | NewOrder | Cancel | CancelReplace | SettlementPrice | Expire
)
"""Any input message."""
