"""Outcomes of applying one input: accepted (with any fills) or rejected with a reason.

Results that carry nothing but a status are shared constants (``ACCEPTED``,
``REJECTED[reason]``) so that the common paths allocate nothing.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from validator.engine.primitives import AccountId, SeriesId


class RejectReason(Enum):
    """Why an input was rejected; a rejected input changes nothing but the sequence number."""

    BAD_TICK = "bad_tick"
    """Order price is not a positive multiple of the series tick."""
    BAD_LOT = "bad_lot"
    """Order quantity is not a positive multiple of the series lot."""
    UNKNOWN_SERIES = "unknown_series"
    """No such series; for a settlement price or expiry: no series at that underlying and expiry."""
    EXPIRED_SERIES = "expired_series"
    """The series (or its expiry) has expired: no more orders, listings or expiry inputs."""
    INSUFFICIENT_COLLATERAL = "insufficient_collateral"
    """The account cannot reserve the premium (buy) or the collateral (uncovered sell)."""
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    """A post-only order (or its replacement) would trade on arrival."""
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    """The account has already used this client order id."""
    TOO_MANY_ORDER_ID_GAPS = "too_many_order_id_gaps"
    """The account's used client order ids already form ``MAX_ID_RANGES`` (4,096) separate
    ranges and this id would start another: number orders consecutively."""
    UNKNOWN_ORDER = "unknown_order"
    """The account has no resting order with this id (never placed, filled or cancelled)."""
    UNKNOWN_ACCOUNT = "unknown_account"
    """The account has never received a deposit."""
    DUPLICATE_SERIES = "duplicate_series"
    """A series with this id is already listed."""
    INVALID_SERIES = "invalid_series"
    """Listing parameters are out of range (non-positive strike, multiplier, tick or lot;
    a call cap not above the strike; a put with a cap)."""
    BAD_AMOUNT = "bad_amount"
    """A deposit or withdrawal amount is not positive."""
    INSUFFICIENT_FUNDS = "insufficient_funds"
    """A withdrawal exceeds the cash that is neither locked nor reserved."""
    BAD_PRICE = "bad_price"
    """A settlement price is negative."""
    ALREADY_SETTLED = "already_settled"
    """A settlement price arrived for an expiry that is already settled."""
    DUPLICATE_REQUEST_ID = "duplicate_request_id"
    """A deposit's or withdrawal's ``request_id`` is one the account has already used (for a
    transfer or an order: they share the account's client ids); nothing is applied."""


class Fill(NamedTuple):
    """One trade between the incoming order and one resting (maker) order, at the maker's price.

    Built on the hot path from the book's integer records, so the numeric fields
    are plain ``int``: ``maker_order`` is an ``OrderId``, ``price`` a ``Price``,
    ``qty`` a ``Quantity``.
    """

    maker: AccountId
    maker_order: int
    price: int
    qty: int


class CancelledOrder(NamedTuple):
    """A resting order the engine cancelled as a side effect (self-trade prevention, expiry);
    ``qty`` is what was left of it. Numeric fields are plain ``int`` as in ``Fill``."""

    account: AccountId
    order_id: int
    qty: int


class Payout(NamedTuple):
    """Cash settlement of one account's position in one series: ``amount`` is credited
    (negative: debited)."""

    series: SeriesId
    account: AccountId
    position: int
    amount: int


class Result(NamedTuple):
    """What one input did. ``reason`` is None when accepted.

    A named tuple rather than a frozen dataclass: it is built on the hot path
    for every trade, and costs less than half as much to create.
    """

    reason: RejectReason | None = None
    fills: tuple[Fill, ...] = ()
    cancelled: tuple[CancelledOrder, ...] = ()
    payouts: tuple[Payout, ...] = ()

    @property
    def accepted(self) -> bool:
        """True when the input was accepted."""
        return self.reason is None


ACCEPTED = Result()
"""The shared result of an accepted input that produced nothing else."""

REJECTED: dict[RejectReason, Result] = {reason: Result(reason) for reason in RejectReason}
"""The shared rejection result for each reason."""
