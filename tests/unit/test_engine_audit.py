"""``audit`` reports exactly the inconsistency planted in a sound engine state.

Each case builds the same sound state, corrupts one thing (an order record, a reservation, a
level's count, a price index, an account's cash...) and asserts the exact list of problems:
the check that should see it, and nothing that should not.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.validator_support import ETH_PUT, PENNY, accepted, buy, deposit, funded_engine, sell
from validator.engine.audit import audit
from validator.engine.book import Level
from validator.engine.instruments import ExpiryState
from validator.engine.messages import Withdraw
from validator.engine.primitives import (
    AccountId,
    Cash,
    Expiry,
    SeriesId,
    Underlying,
)
from validator.engine.records import Holding, Order
from validator.engine.state import State

PUT_ID = SeriesId("BTC-100-1000-P")
ETH_ID = SeriesId("ETH-200-300-P")


def sound_state() -> State:
    """PUT: alice bids 2 @ 50 (after buying 1 from carol), bob offers 2 @ 60; ETH_PUT: bob
    bids 5 @ 10 (multiplier 10); dave's account is empty (cash 0, nothing required).

    alice: cash 999950, required 100, PUT holding [1, 0, 100, 0]
    bob: cash 1000000, required 2500, PUT [0, 2, 0, 2000], ETH_PUT [0, 0, 500, 0]
    carol: cash 1000050, required 1000, PUT [-1, 0, 0, 1000]
    """
    engine = funded_engine()
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    accepted(engine.apply(sell("carol", 1, 50, 1)))
    accepted(engine.apply(buy("bob", 2, 10, 5, series=ETH_PUT)))
    accepted(engine.apply(deposit("dave", 5)))
    accepted(engine.apply(Withdraw(AccountId("dave"), Cash(5))))
    state: State = engine._state
    return state


def test_the_sound_state_has_no_problems() -> None:
    state = sound_state()
    dave = state.accounts_by_id[AccountId("dave")]
    assert (dave.cash, dave.required) == (0, 0)  # the bounds hold with equality
    assert audit(state) == []


def test_several_orders_of_one_account_in_a_series_and_a_price_of_one_are_sound() -> None:
    """Reservations add up over an account's orders in a series; a price of 1 on a tick of 1
    is on the tick."""
    engine = funded_engine()
    accepted(engine.apply(PENNY))
    for msg in (
        sell("alice", 1, 60, 2),
        sell("alice", 2, 65, 1),
        buy("alice", 3, 50, 1),
        buy("alice", 4, 45, 2),
        buy("bob", 1, 1, 3, series=PENNY),
    ):
        accepted(engine.apply(msg))
    state: State = engine._state
    alice = state.accounts_by_id[AccountId("alice")]
    assert alice.holdings[0].fields() == [0, 3, 50 + 90, 3000]
    assert audit(state) == []


def _flip_side(state: State) -> None:
    state.accounts_by_id[AccountId("alice")].orders[1].is_buy = 0


def _wrong_series(state: State) -> None:
    state.accounts_by_id[AccountId("bob")].orders[2].series = 0


def _off_tick(state: State) -> None:
    state.accounts_by_id[AccountId("alice")].orders[1].price = 52


def _zero_price(state: State) -> None:
    state.accounts_by_id[AccountId("alice")].orders[1].price = 0


def _off_lot(state: State) -> None:
    state.accounts_by_id[AccountId("bob")].orders[2].qty = 3


def _negative_qty(state: State) -> None:
    state.accounts_by_id[AccountId("bob")].orders[2].qty = -5


def _stopped_trading(state: State) -> None:
    state.series_by_id[PUT_ID].trading = False


def _unknown_order_indexed_first(state: State) -> None:
    alice = state.accounts_by_id[AccountId("alice")]
    alice.orders = {7: Order(1, 50, alice.index, 7, 0, 1, 0, alice.holdings[0]), **alice.orders}


def _copy_indexed(state: State) -> None:
    alice = state.accounts_by_id[AccountId("alice")]
    o = alice.orders[1]
    alice.orders[1] = Order(
        o.qty, o.price, o.account, o.order_id, o.series, o.is_buy, o.post_only, o.holding
    )


def _order_off_its_holding(state: State) -> None:
    alice = state.accounts_by_id[AccountId("alice")]
    alice.orders[1].holding = Holding()


def _unused_id(state: State) -> None:
    alice = state.accounts_by_id[AccountId("alice")]
    alice.id_starts.clear()
    alice.id_ends.clear()


def _wrong_collateral(state: State) -> None:
    state.accounts_by_id[AccountId("bob")].holdings[0].collateral = 1999


def _settled(state: State) -> None:
    state.expiries[(Underlying("BTC"), Expiry(100))].state = ExpiryState.SETTLED


def _buy_without_holding(state: State) -> None:
    del state.accounts_by_id[AccountId("bob")].holdings[2]


def _sell_without_holding(state: State) -> None:
    del state.accounts_by_id[AccountId("bob")].holdings[0]


def _required_off(state: State) -> None:
    state.accounts_by_id[AccountId("bob")].required = 2501


def _negative_cash(state: State) -> None:
    state.accounts_by_id[AccountId("carol")].cash = -1


def _cash_below_required(state: State) -> None:
    state.accounts_by_id[AccountId("carol")].cash = 999


def _negative_required(state: State) -> None:
    state.accounts_by_id[AccountId("dave")].required = -1


def _not_indexed(state: State) -> None:
    del state.accounts_by_id[AccountId("alice")].orders[1]


def _positions_off(state: State) -> None:
    state.accounts_by_id[AccountId("carol")].holdings[0].pos = -2


def _crossed(state: State) -> None:
    book = state.series_by_id[PUT_ID].book
    level = book.asks.pop(60)
    level.orders[0].price = 50
    book.asks[50] = level
    book.ask_keys[:] = [-50]


def _duplicate_key(state: State) -> None:
    state.series_by_id[PUT_ID].book.bid_keys.append(50)


def _level_without_key(state: State) -> None:
    book = state.series_by_id[PUT_ID].book
    book.asks[70] = Level(Order(1, 70, 1, 9, 0, 0, 0, Holding()))


def _live_behind_front(state: State) -> None:
    level = state.series_by_id[ETH_ID].book.bids[10]
    level.orders.insert(0, Order(5, 10, 2, 9, 2, 1, 0, Holding()))
    level.head = 1


def _live_count_off(state: State) -> None:
    state.series_by_id[PUT_ID].book.asks[60].live = 2


def _empty_level(state: State) -> None:
    book = state.series_by_id[PUT_ID].book
    level = Level(Order(0, 70, 1, 9, 0, 0, 0, Holding()))
    level.live = 0
    book.asks[70] = level
    book.ask_keys[:] = [-70, -60]


ALICE_HOLDING = "account alice: series BTC-100-1000-P holding [1, 0, 100, 0] expected"
BOB_PUT = "account bob: series BTC-100-1000-P holding [0, 2, 0, 2000] expected"
BOB_ETH = "account bob: series ETH-200-300-P holding [0, 0, 500, 0] expected"

CASES: dict[str, tuple[Callable[[State], None], list[str]]] = {
    "a buy filed as a sell": (
        _flip_side,
        [
            "series BTC-100-1000-P: order 0/1 is filed on the wrong book or side",
            f"{ALICE_HOLDING} open_sell=2 buy_reserve=0 collateral=1000",
            "account alice: required 100 != recomputed 1000",
        ],
    ),
    "an order naming another series": (
        _wrong_series,
        [
            "series ETH-200-300-P: order 1/2 is filed on the wrong book or side",
            "account bob: resting order 2 is not tied to its holding",
            f"{BOB_PUT} open_sell=2 buy_reserve=50 collateral=2000",
            f"{BOB_ETH} open_sell=0 buy_reserve=0 collateral=0",
            "account bob: required 2500 != recomputed 2050",
        ],
    ),
    "a price off the tick": (
        _off_tick,
        [
            "series BTC-100-1000-P: bid level 50 holds an order at another price",
            "series BTC-100-1000-P: order 0/1 price 52 is off the tick",
            f"{ALICE_HOLDING} open_sell=0 buy_reserve=104 collateral=0",
            "account alice: required 100 != recomputed 104",
        ],
    ),
    "a zero price": (
        _zero_price,
        [
            "series BTC-100-1000-P: bid level 50 holds an order at another price",
            "series BTC-100-1000-P: order 0/1 price 0 is off the tick",
            f"{ALICE_HOLDING} open_sell=0 buy_reserve=0 collateral=0",
            "account alice: required 100 != recomputed 0",
        ],
    ),
    "a quantity off the lot": (
        _off_lot,
        [
            "series ETH-200-300-P: order 1/2 quantity 3 is off the lot",
            f"{BOB_ETH} open_sell=0 buy_reserve=300 collateral=0",
            "account bob: required 2500 != recomputed 2300",
        ],
    ),
    "a negative quantity that is a multiple of the lot": (
        _negative_qty,
        [
            "series ETH-200-300-P: order 1/2 quantity -5 is off the lot",
            f"{BOB_ETH} open_sell=0 buy_reserve=-500 collateral=0",
            "account bob: required 2500 != recomputed 1500",
        ],
    ),
    "orders resting in a series that stopped trading": (
        _stopped_trading,
        [
            "series BTC-100-1000-P: order 0/1 rests in a series that stopped trading",
            "series BTC-100-1000-P: order 1/1 rests in a series that stopped trading",
        ],
    ),
    "an indexed order missing from the book, indexed before a sound one": (
        _unknown_order_indexed_first,
        ["account alice: order 7 is indexed but not in its book"],
    ),
    "an account indexing a copy of its resting order": (
        _copy_indexed,
        [
            "account alice: order 1 is indexed but not in its book",
            f"{ALICE_HOLDING} open_sell=0 buy_reserve=0 collateral=0",
            "account alice: required 100 != recomputed 0",
        ],
    ),
    "a resting order tied to a holding that is not its account's": (
        _order_off_its_holding,
        ["account alice: resting order 1 is not tied to its holding"],
    ),
    "a resting order whose id is not recorded as used": (
        _unused_id,
        ["account alice: resting order 1 has an unused id"],
    ),
    "a holding's collateral off by one": (
        _wrong_collateral,
        [
            "account bob: series BTC-100-1000-P holding [0, 2, 0, 1999] expected "
            "open_sell=2 buy_reserve=0 collateral=2000"
        ],
    ),
    "holdings in a settled expiry": (
        _settled,
        [
            "account alice: holds series BTC-100-1000-P after it settled",
            "account bob: holds series BTC-100-1000-P after it settled",
            "account carol: holds series BTC-100-1000-P after it settled",
        ],
    ),
    "a resting buy in a series with no holding": (
        _buy_without_holding,
        [
            "account bob: resting order 2 is not tied to its holding",
            "account bob: orders in a series it has no holding in",
            "account bob: required 2500 != recomputed 2000",
        ],
    ),
    "a resting sell in a series with no holding": (
        _sell_without_holding,
        [
            "account bob: resting order 1 is not tied to its holding",
            "account bob: orders in a series it has no holding in",
            "account bob: required 2500 != recomputed 500",
        ],
    ),
    "required off by one": (_required_off, ["account bob: required 2501 != recomputed 2500"]),
    "negative cash": (
        _negative_cash,
        ["account carol: negative cash -1", "account carol: required 1000 not within cash -1"],
    ),
    "cash one below required": (
        _cash_below_required,
        ["account carol: required 1000 not within cash 999"],
    ),
    "a negative required": (
        _negative_required,
        [
            "account dave: required -1 != recomputed 0",
            "account dave: required -1 not within cash 0",
        ],
    ),
    "a resting order its account does not index": (
        _not_indexed,
        [
            f"{ALICE_HOLDING} open_sell=0 buy_reserve=0 collateral=0",
            "account alice: required 100 != recomputed 0",
            "order 0/1 rests but is not indexed by its account",
        ],
    ),
    "positions that do not sum to zero": (
        _positions_off,
        [
            "account carol: series BTC-100-1000-P holding [-2, 0, 0, 1000] expected "
            "open_sell=0 buy_reserve=0 collateral=2000",
            "account carol: required 1000 != recomputed 2000",
            "series BTC-100-1000-P: positions sum to -1, not 0",
        ],
    ),
    "a crossed book (best bid = best ask)": (
        _crossed,
        ["series BTC-100-1000-P: book crossed: bid 50 >= ask 50"],
    ),
    "a bid price index with a duplicate key": (
        _duplicate_key,
        ["series BTC-100-1000-P: bid price index does not match its levels"],
    ),
    "an ask level missing from the price index": (
        _level_without_key,
        ["series BTC-100-1000-P: ask price index does not match its levels"],
    ),
    "a live order behind a level's front": (
        _live_behind_front,
        ["series ETH-200-300-P: bid level 10 has a live order behind its front"],
    ),
    "a level counting more live orders than it holds": (
        _live_count_off,
        ["series BTC-100-1000-P: ask level 60 counts 2 live, holds 1"],
    ),
    "a level with no live order": (
        _empty_level,
        ["series BTC-100-1000-P: ask level 70 counts 0 live, holds 0"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_audit_reports_exactly_the_planted_inconsistency(case: str) -> None:
    corrupt, expected = CASES[case]
    state = sound_state()
    corrupt(state)
    assert audit(state) == expected
