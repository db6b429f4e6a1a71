"""Domain values of the options venue: ids, money, quantities and the small enums.

Every amount is an integer. Prices, strikes, caps and settlement prices are in
cash units per unit of underlying; a contract covers ``multiplier`` units of
underlying, so the premium of a fill is ``price * qty * multiplier`` cash units.
"""

from __future__ import annotations

from enum import Enum
from typing import NewType

AccountId = NewType("AccountId", str)
"""Who owns cash, positions and orders; any non-empty string from the log."""

SeriesId = NewType("SeriesId", str)
"""Name of one option series, chosen by the listing message."""

Underlying = NewType("Underlying", str)
"""Name of the asset an option is written on (``"BTC"``)."""

OrderId = NewType("OrderId", int)
"""Client order id: chosen by the account, unique per account for ever (de-duplicates retries)."""

Expiry = NewType("Expiry", int)
"""Label of an expiry (for example unix seconds). Never compared with a clock: the
``Expire`` input message is what stops trading."""

Price = NewType("Price", int)
"""Cash units per unit of underlying; an order price must be a positive multiple of the tick."""

Quantity = NewType("Quantity", int)
"""Number of contracts; an order quantity must be a positive multiple of the lot."""

Cash = NewType("Cash", int)
"""An amount of cash units."""

Seq = NewType("Seq", int)
"""Log sequence number: the n-th input applied, counting from 1."""

INT_LIMIT = 1 << 63
"""Every integer on the wire lies in ``(-INT_LIMIT, INT_LIMIT)``: it fits a signed 64-bit word."""


class Side(Enum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"


class OrderKind(Enum):
    """Time in force and execution constraint of a new order."""

    GTC = "gtc"
    """Limit order: trades what it can, the rest rests until cancelled or expired."""
    IOC = "ioc"
    """Immediate or cancel: trades what it can, the rest is dropped."""
    POST_ONLY = "post_only"
    """Rests only: rejected if any part of it would trade on arrival."""


class OptionType(Enum):
    """Call or put; both are European and cash-settled."""

    CALL = "call"
    PUT = "put"
