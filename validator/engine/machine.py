"""The validator's state machine: ``Engine.apply(message) -> Result``, one input at a time.

The engine is a pure function of the ordered input log: no clock, no
randomness, no iteration whose order depends on hashing. Bad business input is
answered with a rejection ``Result`` and changes nothing but the sequence
number; ``apply`` raises only if handed something that is not a message.

State hashes (see ``chain.py`` for the per-input hash chain):

- ``state_hash()`` is sha256 of ``snapshot()``, the canonical serialisation of
  the whole state. It costs time linear in the state, so a node computes it at
  checkpoints (every N inputs), not on the hot path.
- ``Engine.restore(engine.snapshot())`` yields an engine with the same hash that
  behaves identically on every further input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Final

from validator.engine import snapshot
from validator.engine.audit import audit
from validator.engine.errors import MessageError, SequenceError
from validator.engine.funding import deposit, withdraw
from validator.engine.lifecycle import expire, list_series, settlement_price
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    Expire,
    ListSeries,
    Message,
    NewOrder,
    SettlementPrice,
    Withdraw,
)
from validator.engine.orders import cancel, cancel_replace, new_order
from validator.engine.primitives import AccountId, OrderId, SeriesId
from validator.engine.results import Result
from validator.engine.state import State

_HANDLERS: Final[dict[type[Any], Callable[[State, Any], Result]]] = {
    NewOrder: new_order,
    Cancel: cancel,
    CancelReplace: cancel_replace,
    ListSeries: list_series,
    Deposit: deposit,
    Withdraw: withdraw,
    SettlementPrice: settlement_price,
    Expire: expire,
}

_NEW_ORDER: Final = NewOrder
_CANCEL: Final = Cancel
_CANCEL_REPLACE: Final = CancelReplace


@dataclass(frozen=True, slots=True)
class AccountView:
    """A read-only copy of one account."""

    cash: int
    required: int
    available: int
    positions: dict[SeriesId, int]
    """Non-zero positions by series id."""
    orders: list[OrderId]
    """Ids of resting orders, ascending."""


class Engine:
    """Options matching engine and settlement ledger over an ordered input log."""

    __slots__ = ("_state",)

    def __init__(self, state: State | None = None) -> None:
        self._state = State() if state is None else state

    @property
    def seq(self) -> int:
        """Sequence number of the last input applied (0 before any)."""
        return self._state.seq

    def apply(self, msg: Message) -> Result:
        """Apply the next input and return its outcome."""
        state = self._state
        # The order-entry messages, most of the flow, by direct calls (which the compiled
        # engine makes natively); the rest through the table.
        if type(msg) is _NEW_ORDER:
            state.seq += 1
            return new_order(state, msg)
        if type(msg) is _CANCEL:
            state.seq += 1
            return cancel(state, msg)
        if type(msg) is _CANCEL_REPLACE:
            state.seq += 1
            return cancel_replace(state, msg)
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            raise MessageError(f"not an input message: {type(msg).__name__}")
        state.seq += 1
        return handler(state, msg)

    def apply_many(self, msgs: Sequence[Message]) -> list[Result]:
        """Apply inputs in order (a chunk of the log); their outcomes, in the same order.

        The same as ``[engine.apply(msg) for msg in msgs]``; compiled, the loop makes native
        calls instead of one call from Python per input."""
        return [self.apply(msg) for msg in msgs]

    def apply_at(self, seq: int, msg: Message) -> Result:
        """Apply an input that the log numbered ``seq``, which must be the next number."""
        if seq != self._state.seq + 1:
            raise SequenceError(self._state.seq + 1, seq)
        return self.apply(msg)

    def snapshot(self) -> bytes:
        """The whole state, canonically serialised (see ``snapshot.py``)."""
        return snapshot.dump(self._state)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """An engine in the state ``data`` describes; raises ``SnapshotError`` if it is not
        a canonical snapshot of a consistent state."""
        return cls(snapshot.load(data))

    def state_hash(self) -> bytes:
        """sha256 of the canonical snapshot: the full-state root at this sequence number."""
        return sha256(self.snapshot()).digest()

    def audit(self) -> list[str]:
        """Every inconsistency in the state (empty when sound); see ``audit.py``."""
        return audit(self._state)

    # Read-only views.

    def account(self, account_id: str) -> AccountView | None:
        """A copy of one account, or None if it never received a deposit."""
        account = self._state.accounts_by_id.get(AccountId(account_id))
        if account is None:
            return None
        series = self._state.series
        return AccountView(
            cash=account.cash,
            required=account.required,
            available=account.available,
            positions={
                series[index].id: holding.pos
                for index, holding in sorted(account.holdings.items())
                if holding.pos
            },
            orders=account.order_ids(),
        )

    def depth(self, series_id: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(bids, asks)`` as ``(price, quantity)`` per level, best first; empty if unknown."""
        series = self._state.series_by_id.get(SeriesId(series_id))
        if series is None:
            return [], []
        book = series.book
        return book.depth(1), book.depth(0)

    def total_cash(self) -> int:
        """Sum of every account's cash."""
        return sum(account.cash for account in self._state.accounts)

    def positions(self, series_id: str) -> dict[AccountId, int]:
        """Non-zero positions in one series by account id, sorted by account id."""
        series = self._state.series_by_id.get(SeriesId(series_id))
        if series is None:
            return {}
        found = {
            account.id: account.position(series.index)
            for account in self._state.accounts
            if account.position(series.index)
        }
        return dict(sorted(found.items()))

    def counts(self) -> dict[str, int]:
        """Sizes of the state: accounts, series, resting orders."""
        state = self._state
        return {
            "accounts": len(state.accounts),
            "series": len(state.series),
            "trading_series": sum(1 for series in state.series if series.trading),
            "resting_orders": sum(len(account.orders) for account in state.accounts),
        }

    def series_ids(self) -> list[SeriesId]:
        """Ids of every listed series, sorted."""
        return sorted(self._state.series_by_id)
