"""Snapshots: the whole state as canonical JSON, and back.

The snapshot holds only primary state: series, expiry states and prices, each
account's cash, positions and used client order ids (as ranges), and the
resting orders of every book in priority order. Everything derived (reservations, collateral,
the account's order index) is recomputed on restore. Everything is sorted by
its public id, so the bytes do not depend on internal indices or on the
history of any dictionary, and the state hash (sha256 of these bytes) is the
same for every validator at the same sequence number.

``load`` accepts only what ``dump`` would write: after rebuilding it audits the
state and re-serialises it, and rejects the input unless the bytes match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import msgspec

from validator.engine.accounts import Account, refresh_collateral
from validator.engine.audit import audit
from validator.engine.errors import SnapshotError
from validator.engine.instruments import ExpiryState, Series
from validator.engine.lifecycle import list_series
from validator.engine.matching import rest
from validator.engine.messages import ListSeries
from validator.engine.primitives import AccountId, Expiry, OptionType, Price, SeriesId, Underlying
from validator.engine.records import Order
from validator.engine.state import State

FORMAT = "dc-redundancy/validator-snapshot/1"
_FORMAT = json.dumps(FORMAT).encode("ascii")
_SORTED = msgspec.json.Encoder(order="sorted")


def dump(state: State) -> bytes:
    """Canonical serialisation of the whole state: the bytes ``dump_from_scratch`` writes.

    A node hashes the whole state at every batch boundary, and between two boundaries few
    accounts and books change. So each account's and each non-empty book's part of the document
    is kept as written (``Account.snap``, ``Series.snap``), and only the parts the engine marked
    ``changed`` since are written again: the document is their concatenation (JSON without
    whitespace is written part by part the same as whole). For the engine benchmark's 1.0 MB
    state, a hash every 150 inputs costs about 2 ms instead of 19 (``bench/bench_engine.py``).
    A state changed other than by the engine's handlers (a test planting a fault) is written
    with ``dump_from_scratch``: nothing marked its parts."""
    series = state.sorted_series
    if len(series) != len(state.series):
        series = state.sorted_series = sorted(state.series, key=_series_id)
        state.series_part = _encode([_listing(item) for item in series])
    accounts = state.sorted_accounts
    if len(accounts) != len(state.accounts):
        accounts = state.sorted_accounts = sorted(state.accounts, key=_account_id)
    account_parts = []
    for account in accounts:
        if account.changed:
            account.snap = _encode(_account(state, account))
            account.changed = False
        account_parts.append(account.snap)
    book_parts = []
    for item in series:
        book = item.book
        if book.bid_keys or book.ask_keys:
            if item.changed:
                item.snap = _encode(_book(state, item))
                item.changed = False
            book_parts.append(item.snap)
    return b"".join(
        (
            b'{"accounts":[',
            b",".join(account_parts),
            b'],"books":[',
            b",".join(book_parts),
            b'],"expiries":',
            _encode(_expiries(state)),
            b',"format":',
            _FORMAT,
            b',"seq":',
            b"%d" % state.seq,
            b',"series":',
            state.series_part,
            b"}",
        )
    )


def dump_from_scratch(state: State) -> bytes:
    """The canonical serialisation written whole, keeping nothing: the reference ``dump`` must
    equal (the tests compare them after every input)."""
    series = sorted(state.series, key=_series_id)
    return _encode(
        {
            "format": FORMAT,
            "seq": state.seq,
            "series": [_listing(item) for item in series],
            "expiries": _expiries(state),
            "accounts": [
                _account(state, account) for account in sorted(state.accounts, key=_account_id)
            ],
            "books": [
                _book(state, item) for item in series if item.book.bid_keys or item.book.ask_keys
            ],
        }
    )


def _encode(obj: object) -> bytes:
    """``obj`` as canonical JSON: sorted keys, no whitespace, ASCII with escapes."""
    # msgspec writes json's canonical bytes where they are the same (ASCII without DEL, as in
    # ``codec.encode_message``), about 7x faster. Anything else, and anything msgspec cannot
    # write, through json.
    try:
        data = _SORTED.encode(obj)
    except (msgspec.EncodeError, UnicodeEncodeError, OverflowError, TypeError):
        data = b""
    if data and data.isascii() and b"\x7f" not in data:
        return data
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


def _series_id(series: Series) -> str:
    return series.id


def _account_id(account: Account) -> str:
    return account.id


def _listing(item: Series) -> list[object]:
    return [
        item.id,
        item.underlying,
        item.expiry,
        item.option_type.value,
        item.strike,
        item.multiplier,
        item.tick,
        item.lot,
        item.cap,
    ]


def _expiries(state: State) -> list[list[object]]:
    return [
        [group.underlying, group.expiry, group.state.value, group.price]
        for _, group in sorted(state.expiries.items())
    ]


def _account(state: State, account: Account) -> list[object]:
    return [
        account.id,
        account.cash,
        {
            state.series[index].id: holding.pos
            for index, holding in account.holdings.items()
            if holding.pos
        },
        account.used_id_ranges(),
    ]


def _book(state: State, item: Series) -> list[object]:
    book = item.book
    return [item.id, _orders(state, book.orders(1)), _orders(state, book.orders(0))]


def _orders(state: State, orders: Iterator[Order]) -> list[list[object]]:
    return [
        [state.accounts[order.account].id, order.order_id, order.price, order.qty, order.post_only]
        for order in orders
    ]


def load(data: bytes) -> State:
    """Rebuild a state from ``dump`` output; raise ``SnapshotError`` if it is not one."""
    try:
        obj = json.loads(data)
        if obj["format"] != FORMAT:
            raise SnapshotError(f"unknown snapshot format {obj['format']!r}")
        state = _rebuild(obj)
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise SnapshotError(f"malformed snapshot: {exc!r}") from None
    problems = audit(state)
    if problems:
        raise SnapshotError("inconsistent snapshot: " + "; ".join(problems))
    if dump(state) != data:
        raise SnapshotError("snapshot is not in canonical form")
    return state


def _rebuild(obj: dict[str, Any]) -> State:
    state = State()
    for sid, underlying, expiry, option_type, strike, multiplier, tick, lot, cap in obj["series"]:
        listing = ListSeries(
            SeriesId(sid),
            Underlying(underlying),
            Expiry(expiry),
            OptionType(option_type),
            Price(strike),
            multiplier,
            Price(tick),
            lot,
            Price(cap),
        )
        result = list_series(state, listing)
        if not result.accepted:
            raise SnapshotError(f"series {sid!r}: {result.reason}")
    for underlying, expiry, expiry_state, price in obj["expiries"]:
        group = state.expiries[(underlying, expiry)]
        group.state = ExpiryState(expiry_state)
        group.price = price
        for series in group.series:
            series.trading = group.state is ExpiryState.TRADING
    budget = obj["seq"]  # every used id was accepted at its own sequence number
    for account_id, cash, positions, ranges in obj["accounts"]:
        account = state.open_account(AccountId(account_id))
        account.cash = cash
        for first, last in ranges:
            budget -= last - first + 1
            if budget < 0 or last < first:
                raise SnapshotError(f"account {account_id!r}: more used order ids than inputs")
        if any(later[0] <= earlier[1] + 1 for earlier, later in pairwise(ranges)):
            raise SnapshotError(f"account {account_id!r}: used order id ranges overlap or touch")
        account.id_starts = [first for first, _ in ranges]
        account.id_ends = [last for _, last in ranges]
        for sid, position in positions.items():
            account.holding(state.series_by_id[sid].index).pos = position
    for sid, bids, asks in obj["books"]:
        series = state.series_by_id[sid]
        book = series.book
        for is_buy, orders in ((1, bids), (0, asks)):
            for account_id, order_id, price, qty, post_only in orders:
                account = state.accounts_by_id[account_id]
                holding = account.holding(series.index)
                order = Order(
                    qty, price, account.index, order_id, series.index, is_buy, post_only, holding
                )
                if order_id in account.orders:
                    raise SnapshotError(f"order {account_id}/{order_id} rests twice")
                rest(book, account, series, order)
    for account in state.accounts:
        for index, holding in account.holdings.items():
            refresh_collateral(account, holding, state.series[index].max_payout)
    state.seq = obj["seq"]
    return state
