"""Option series and their expiries.

Every series is European and cash-settled, and every short position is *fully
collateralised*: it locks the most it can ever owe, so settlement can never make
cash negative and total cash is conserved.

- A **put** pays ``max(strike - S, 0)`` per unit at settlement price ``S``; it can
  never owe more than ``strike``, so an uncovered short put locks
  ``strike * multiplier`` per contract.
- A **call** is listed with a settlement cap ``cap > strike`` and pays
  ``min(max(S, strike), cap) - strike`` per unit (a call spread strike/cap, the
  usual way a cash-only venue bounds a call's liability). An uncovered short call
  locks ``(cap - strike) * multiplier`` per contract.

A short is *covered* to the extent the account is long the same series, so only
the net short quantity locks collateral.
"""

from __future__ import annotations

from enum import Enum

from validator.engine.book import Book
from validator.engine.messages import ListSeries
from validator.engine.primitives import Expiry, OptionType, Price, Quantity, SeriesId, Underlying
from validator.engine.results import RejectReason


class ExpiryState(Enum):
    """Life cycle of an expiry (one underlying, one expiry label)."""

    TRADING = "trading"
    """Orders are accepted."""
    EXPIRED = "expired"
    """Trading stopped and resting orders were cancelled; waiting for a settlement price."""
    SETTLED = "settled"
    """Positions were cash-settled and collateral released."""


class Series:
    """One listed option series; ``index`` is its slot in the engine's tables."""

    __slots__ = (
        "book",
        "cap",
        "changed",
        "expiry",
        "id",
        "index",
        "lot",
        "max_payout",
        "multiplier",
        "option_type",
        "snap",
        "strike",
        "tick",
        "trading",
        "underlying",
    )

    def __init__(self, index: int, msg: ListSeries) -> None:
        self.index = index
        self.id: SeriesId = msg.series
        self.underlying: Underlying = msg.underlying
        self.expiry: Expiry = msg.expiry
        self.option_type = msg.option_type
        self.strike: Price = msg.strike
        self.multiplier = msg.multiplier
        self.tick: Price = msg.tick
        self.lot: Quantity = msg.lot
        self.cap: Price = msg.cap
        self.max_payout = max_payout_per_contract(msg)
        """Collateral one uncovered short contract locks: the most it can owe."""
        self.trading = True
        self.book = Book()
        """The series' order book."""
        self.snap = b""
        """The book's part of the snapshot as last written (``snapshot.dump``)..."""
        self.changed = True
        """... unless this is set: every change to the book sets it."""

    def payout_per_contract(self, settlement_price: int) -> int:
        """Intrinsic value of one long contract at ``settlement_price``, in cash units."""
        if self.option_type is OptionType.PUT:
            per_unit = max(self.strike - settlement_price, 0)
        else:
            per_unit = max(min(settlement_price, self.cap) - self.strike, 0)
        return per_unit * self.multiplier


def max_payout_per_contract(msg: ListSeries) -> int:
    """The most one contract of the series can pay at settlement, in cash units."""
    if msg.option_type is OptionType.PUT:
        return msg.strike * msg.multiplier
    return (msg.cap - msg.strike) * msg.multiplier


def listing_problem(msg: ListSeries) -> RejectReason | None:
    """Why a listing's parameters are out of range, or None if they are fine."""
    if msg.strike <= 0 or msg.multiplier <= 0 or msg.tick <= 0 or msg.lot <= 0:
        return RejectReason.INVALID_SERIES
    if msg.option_type is OptionType.CALL and msg.cap <= msg.strike:
        return RejectReason.INVALID_SERIES
    if msg.option_type is OptionType.PUT and msg.cap != 0:
        return RejectReason.INVALID_SERIES
    return None


class ExpiryGroup:
    """All series of one underlying and expiry: they stop trading and settle together."""

    __slots__ = ("expiry", "price", "series", "state", "underlying")

    def __init__(self, underlying: Underlying, expiry: Expiry) -> None:
        self.underlying = underlying
        self.expiry = expiry
        self.state = ExpiryState.TRADING
        self.price: Price | None = None
        """The latest settlement price published by the oracle, if any."""
        self.series: list[Series] = []
