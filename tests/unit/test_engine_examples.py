"""Fixed examples of order entry and matching: for cancels and cancel-replaces (the inlined
paths of ``orders.py``) the reservation each one releases or needs, exactly at the boundary, the
ids it uses, the kind the replacement keeps and the lazy level it leaves; for matching, partial
fills, self-trade cancels and what each leaves reserved. ``audit`` runs after every input, so a
wrong reservation shows up where it is made. (The Hypothesis properties in
test_engine_properties.py cover the same ground at random but are too slow for the mutation
run's kill suite.)"""

from __future__ import annotations

import json

from tests.unit.validator_support import (
    ETH_PUT,
    FUNDS,
    PENNY,
    PUT,
    accepted,
    buy,
    deposit,
    funded_engine,
    sell,
    state_without_seq,
)
from validator.engine import Engine
from validator.engine.book import COMPACT_SLACK
from validator.engine.instruments import Series
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    ListSeries,
    Message,
    Withdraw,
)
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
    Underlying,
)
from validator.engine.results import CancelledOrder, Fill, RejectReason, Result

POST_ONLY = OrderKind.POST_ONLY


def cancel(account: str, order_id: int) -> Cancel:
    return Cancel(AccountId(account), OrderId(order_id))


def replace(account: str, order_id: int, new_id: int, price: int, qty: int) -> CancelReplace:
    return CancelReplace(
        AccountId(account), OrderId(order_id), OrderId(new_id), Price(price), Quantity(qty)
    )


def run(engine: Engine, *msgs: Message) -> Result:
    """Apply each message (every one must be accepted) with the state sound after each; the
    last result."""
    result = None
    for msg in msgs:
        result = accepted(engine.apply(msg))
        assert engine.audit() == [], msg
    assert result is not None
    return result


def holding(engine: Engine, name: str, series: ListSeries = PUT) -> list[int] | None:
    """``[position, open_sell, buy_reserve, collateral]`` of one account in one series."""
    state = engine._state
    index = state.series_by_id[series.series].index
    found = state.accounts_by_id[AccountId(name)].holdings.get(index)
    return None if found is None else found.fields()


def funded(name: str, cash: int) -> Engine:
    engine = funded_engine()
    accepted(engine.apply(deposit(name, cash)))
    return engine


# cancel


def test_cancelling_a_buy_releases_its_premium_at_the_multiplier() -> None:
    engine = funded_engine()
    run(engine, buy("bob", 1, 10, 5, series=ETH_PUT), buy("bob", 2, 12, 5, series=ETH_PUT))
    assert holding(engine, "bob", ETH_PUT) == [0, 0, 500 + 600, 0]
    run(engine, cancel("bob", 1))
    assert holding(engine, "bob", ETH_PUT) == [0, 0, 600, 0]
    assert engine.account("bob").required == 600
    run(engine, cancel("bob", 2))
    assert holding(engine, "bob", ETH_PUT) is None
    assert engine.account("bob").required == 0


def test_cancelling_a_buy_of_a_long_keeps_the_position_and_drops_the_reserve() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 50, 1), buy("alice", 1, 50, 1), buy("alice", 2, 45, 2))
    assert holding(engine, "alice") == [1, 0, 90, 0]
    run(engine, cancel("alice", 2))
    assert holding(engine, "alice") == [1, 0, 0, 0]
    assert engine.account("alice").required == 0


def test_cancelling_a_sell_of_a_short_keeps_the_collateral_of_the_short() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 1), sell("carol", 1, 50, 1), sell("carol", 2, 60, 2))
    assert holding(engine, "carol") == [-1, 2, 0, 3000]
    run(engine, cancel("carol", 2))
    assert holding(engine, "carol") == [-1, 0, 0, 1000]
    assert engine.account("carol").required == 1000


def test_cancelling_a_covered_sell_of_a_long_locks_nothing() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 50, 1), buy("alice", 1, 50, 1), sell("alice", 2, 60, 3))
    assert holding(engine, "alice") == [1, 3, 0, 2000]
    run(engine, cancel("alice", 2))
    assert holding(engine, "alice") == [1, 0, 0, 0]
    assert engine.account("alice").required == 0


def test_a_cancelled_order_leaves_a_dead_record_its_level_does_not_count() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 2), buy("bob", 1, 50, 3), cancel("alice", 1))
    assert engine.depth(PUT.series) == ([(50, 3)], [])
    result = run(engine, sell("carol", 1, 50, 1))
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 1),)


def test_cancels_compact_a_level_once_it_holds_more_than_twice_its_live_plus_the_slack() -> None:
    engine = funded_engine()
    depth = 2 * 3 + COMPACT_SLACK  # compacted when live drops below 3
    run(engine, *(sell("bob", i, 50, 1) for i in range(depth)))
    level = engine._state.series_by_id[PUT.series].book.asks[50]
    for i in range(depth - 3):
        run(engine, cancel("bob", i))
        assert len(level.orders) == depth, i  # 2 * live + slack >= depth: kept
    run(engine, cancel("bob", depth - 3))  # live 2: depth > 2 * 2 + slack
    assert [order.order_id for order in level.orders] == [depth - 2, depth - 1]


# cancel-replace: the checks


def test_a_replacement_at_price_zero_or_quantity_zero_is_refused() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 2))
    assert engine.apply(replace("alice", 1, 2, 0, 2)).reason is RejectReason.BAD_TICK
    assert engine.apply(replace("alice", 1, 2, 50, 0)).reason is RejectReason.BAD_LOT
    assert engine.account("alice").orders == [1]


def test_a_replacement_quantity_off_the_lot_is_refused() -> None:
    engine = funded_engine()
    run(engine, buy("bob", 1, 10, 5, series=ETH_PUT))
    assert engine.apply(replace("bob", 1, 2, 10, 7)).reason is RejectReason.BAD_LOT


def test_a_replacement_at_a_price_of_one_on_a_tick_of_one_is_accepted() -> None:
    engine = funded_engine()
    run(engine, PENNY, buy("alice", 1, 2, 3, series=PENNY), replace("alice", 1, 2, 1, 3))
    assert engine.depth(PENNY.series) == ([(1, 3)], [])


def test_a_replacement_may_take_an_unused_id_below_the_last_used() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 1), buy("alice", 5, 45, 1), replace("alice", 5, 3, 40, 1))
    assert engine.account("alice").orders == [1, 3]
    assert engine.apply(buy("alice", 3, 40, 1)).reason is RejectReason.DUPLICATE_ORDER_ID
    run(engine, buy("alice", 2, 40, 1), buy("alice", 4, 40, 1))


def test_a_replacement_filling_the_gap_below_the_last_id_keeps_the_last_used() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 1), buy("alice", 3, 45, 1), replace("alice", 1, 2, 40, 1))
    assert engine.apply(buy("alice", 3, 40, 1)).reason is RejectReason.DUPLICATE_ORDER_ID
    assert engine.apply(buy("alice", 1, 40, 1)).reason is RejectReason.DUPLICATE_ORDER_ID
    run(engine, buy("alice", 4, 40, 1))


def test_a_replacement_skipping_an_id_leaves_it_unused() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 50, 1), replace("alice", 1, 3, 45, 1))
    run(engine, buy("alice", 2, 40, 1))
    assert engine.account("alice").orders == [2, 3]


def test_a_post_only_buy_replacement_below_the_ask_or_with_no_ask_rests() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 40, 1, POST_ONLY), replace("alice", 1, 2, 45, 1))  # no asks
    run(engine, sell("bob", 1, 60, 1), replace("alice", 2, 3, 55, 1))
    assert engine.depth(PUT.series) == ([(55, 1)], [(60, 1)])


def test_a_post_only_sell_replacement_at_the_bid_is_refused_above_it_rests() -> None:
    engine = funded_engine()
    run(engine, sell("alice", 1, 70, 1, POST_ONLY), replace("alice", 1, 2, 65, 1))  # no bids
    run(engine, buy("bob", 1, 50, 1))
    result = engine.apply(replace("alice", 2, 3, 50, 1))
    assert result.reason is RejectReason.POST_ONLY_WOULD_CROSS
    run(engine, replace("alice", 2, 3, 55, 1))
    assert engine.depth(PUT.series) == ([(50, 1)], [(55, 1)])


def test_a_replaced_post_only_order_stays_post_only_and_a_replaced_gtc_order_gtc() -> None:
    engine = funded_engine()
    run(engine, sell("bob", 1, 60, 2), buy("alice", 1, 40, 1, POST_ONLY), buy("carol", 1, 40, 1))
    run(engine, replace("alice", 1, 2, 45, 1), replace("carol", 1, 2, 45, 1))
    result = engine.apply(replace("alice", 2, 3, 60, 1))
    assert result.reason is RejectReason.POST_ONLY_WOULD_CROSS
    result = run(engine, replace("carol", 2, 3, 60, 1))
    assert result.fills == (Fill(AccountId("bob"), 1, 60, 1),)


# cancel-replace: the collateral each one needs, at the boundary


def test_a_buy_replacement_needs_the_extra_premium_at_the_multiplier() -> None:
    engine = funded("dave", 600)
    run(engine, buy("dave", 1, 10, 5, series=ETH_PUT))  # reserves 500: 100 free
    result = engine.apply(replace("dave", 1, 2, 14, 5))  # needs (70 - 50) * 10 = 200
    assert result.reason is RejectReason.INSUFFICIENT_COLLATERAL
    run(engine, replace("dave", 1, 2, 12, 5))  # needs exactly 100
    assert engine.account("dave").available == 0


def test_a_sell_replacement_of_a_short_needs_the_collateral_it_adds() -> None:
    engine = funded("erin", 3950)
    run(engine, buy("bob", 1, 50, 1), sell("erin", 1, 50, 1), sell("erin", 2, 60, 2))
    assert holding(engine, "erin") == [-1, 2, 0, 3000]
    assert engine.account("erin").available == 1000
    result = engine.apply(replace("erin", 2, 3, 60, 4))  # short 5: needs 2000
    assert result.reason is RejectReason.INSUFFICIENT_COLLATERAL
    run(engine, replace("erin", 2, 3, 60, 3))  # short 4: needs exactly 1000
    assert holding(engine, "erin") == [-1, 3, 0, 4000]
    assert engine.account("erin").available == 0


def test_a_sell_replacement_of_a_long_is_covered_up_to_the_position() -> None:
    engine = funded("erin", 50)
    run(engine, sell("bob", 1, 50, 1), buy("erin", 1, 50, 1), sell("erin", 2, 60, 1))
    assert engine.account("erin").available == 0 and holding(engine, "erin") == [1, 1, 0, 0]
    run(engine, replace("erin", 2, 3, 65, 1))  # still covered: needs nothing
    result = engine.apply(replace("erin", 3, 4, 65, 2))  # short 1: needs 1000
    assert result.reason is RejectReason.INSUFFICIENT_COLLATERAL
    assert holding(engine, "erin") == [1, 1, 0, 0]


# matching


def test_a_buy_resting_after_a_partial_fill_reserves_its_rest_at_the_multiplier() -> None:
    engine = funded_engine()
    result = run(
        engine, sell("bob", 1, 10, 5, series=ETH_PUT), buy("alice", 1, 12, 10, series=ETH_PUT)
    )
    assert result.fills == (Fill(AccountId("bob"), 1, 10, 5),)
    assert holding(engine, "alice", ETH_PUT) == [5, 0, 12 * 5 * 10, 0]
    assert engine.account("alice").cash == FUNDS - 10 * 5 * 10


def test_a_sell_resting_after_a_partial_fill_adds_to_the_open_sells() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 60, 2), buy("bob", 1, 50, 1))
    result = run(engine, sell("carol", 2, 50, 3))
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 1),)
    assert holding(engine, "carol") == [-1, 4, 0, 5000]
    assert engine.depth(PUT.series) == ([], [(50, 2), (60, 2)])


def test_a_self_trade_cancel_leaves_the_level_sound_behind_its_front() -> None:
    engine = funded_engine()
    run(engine, sell("alice", 1, 50, 1), sell("bob", 1, 50, 2))
    result = run(engine, buy("alice", 2, 50, 1))
    assert result.cancelled == (CancelledOrder(AccountId("alice"), 1, 1),)
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 1),)
    assert engine.depth(PUT.series) == ([], [(50, 1)])
    assert holding(engine, "alice") == [1, 0, 0, 0]


def test_a_filled_maker_is_dead_behind_the_front_of_its_level() -> None:
    engine = funded_engine()
    run(engine, sell("bob", 1, 50, 1), sell("carol", 1, 50, 2))
    result = run(engine, buy("alice", 1, 50, 1))
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 1),)
    assert engine.depth(PUT.series) == ([], [(50, 2)])
    result = run(engine, buy("alice", 2, 50, 3))
    assert result.fills == (Fill(AccountId("carol"), 1, 50, 2),)
    assert engine.depth(PUT.series) == ([(50, 1)], [])


def test_a_self_trade_cancel_at_the_front_of_the_bids_keeps_time_priority() -> None:
    engine = funded_engine()
    run(engine, buy("bob", 1, 50, 1), buy("carol", 1, 50, 1), buy("alice", 1, 50, 1))
    result = run(engine, sell("bob", 2, 50, 1))
    assert result.cancelled == (CancelledOrder(AccountId("bob"), 1, 1),)
    assert result.fills == (Fill(AccountId("carol"), 1, 50, 1),)
    assert engine.account("alice").orders == [1]


def test_a_self_trade_cancel_at_the_front_of_the_asks_keeps_time_priority() -> None:
    engine = funded_engine()
    run(engine, sell("bob", 1, 50, 1), sell("carol", 1, 50, 1), sell("alice", 1, 50, 1))
    result = run(engine, buy("bob", 2, 50, 1))
    assert result.cancelled == (CancelledOrder(AccountId("bob"), 1, 1),)
    assert result.fills == (Fill(AccountId("carol"), 1, 50, 1),)
    assert engine.account("alice").orders == [1]


def test_fills_compact_an_ask_level_once_it_holds_more_than_twice_its_live_plus_the_slack() -> None:
    engine = funded_engine()
    depth = 2 * 3 + COMPACT_SLACK  # compacted when live drops below 3
    run(engine, *(sell("bob", i, 50, 1) for i in range(depth)))
    level = engine._state.series_by_id[PUT.series].book.asks[50]
    run(engine, buy("alice", 1, 50, depth - 3))  # live 3: 2 * 3 + slack = depth: kept
    assert (len(level.orders), level.head) == (depth, depth - 3)
    run(engine, buy("alice", 2, 50, 1))  # live 2: compacted
    assert ([order.order_id for order in level.orders], level.head) == ([depth - 2, depth - 1], 0)


def test_fills_compact_a_bid_level_once_it_holds_more_than_twice_its_live_plus_the_slack() -> None:
    engine = funded_engine()
    depth = 2 * 3 + COMPACT_SLACK
    run(engine, *(buy("bob", i, 50, 1) for i in range(depth)))
    level = engine._state.series_by_id[PUT.series].book.bids[50]
    run(engine, sell("alice", 1, 50, depth - 3))
    assert (len(level.orders), level.head) == (depth, depth - 3)
    run(engine, sell("alice", 2, 50, 1))
    assert ([order.order_id for order in level.orders], level.head) == ([depth - 2, depth - 1], 0)


def test_a_sell_hitting_bids_moves_premium_from_each_buyer_and_adds_to_their_longs() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 50, 1), buy("bob", 1, 50, 1))  # bob is long 1
    run(engine, buy("bob", 2, 60, 2), buy("alice", 1, 55, 1))
    result = run(engine, sell("carol", 2, 55, 3))
    assert result.fills == (
        Fill(AccountId("bob"), 2, 60, 2),
        Fill(AccountId("alice"), 1, 55, 1),
    )
    assert engine.account("bob").cash == FUNDS - 50 - 120
    assert engine.account("alice").cash == FUNDS - 55
    assert engine.account("carol").cash == FUNDS + 50 + 120 + 55
    assert engine.positions(PUT.series) == {
        AccountId("alice"): 1,
        AccountId("bob"): 3,
        AccountId("carol"): -4,
    }


def test_a_sell_takes_the_bids_of_one_level_oldest_first() -> None:
    engine = funded("dave", FUNDS)
    run(engine, buy("bob", 1, 50, 1), buy("carol", 1, 50, 1), buy("alice", 1, 50, 1))
    result = run(engine, sell("dave", 1, 50, 2))
    assert [(f.maker, f.maker_order) for f in result.fills] == [("bob", 1), ("carol", 1)]
    assert engine.account("alice").orders == [1]


def test_a_covered_sell_of_part_of_a_long_rests_with_no_collateral() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 50, 2), buy("alice", 1, 50, 2), sell("alice", 2, 60, 1))
    assert holding(engine, "alice") == [2, 1, 0, 0]
    assert engine.account("alice").required == 0


def test_resting_post_only_orders_are_flagged_1_in_the_snapshot_gtc_orders_0() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 1, 40, 1, POST_ONLY), buy("bob", 1, 45, 1))
    run(engine, sell("carol", 1, 70, 1, POST_ONLY), replace("carol", 1, 2, 65, 1))
    books = json.loads(engine.snapshot())["books"]
    assert books == [
        [PUT.series, [["bob", 1, 45, 1, 0], ["alice", 1, 40, 1, 1]], [["carol", 2, 65, 1, 1]]]
    ]


def test_replacing_orders_out_of_a_level_compacts_it_past_twice_its_live_plus_the_slack() -> None:
    engine = funded_engine()
    depth = 2 * 3 + COMPACT_SLACK
    run(engine, *(sell("bob", i, 50, 1) for i in range(depth)))
    level = engine._state.series_by_id[PUT.series].book.asks[50]
    for i in range(depth - 3):
        run(engine, replace("bob", i, 100 + i, 55, 1))
        assert len(level.orders) == depth, i
    run(engine, replace("bob", depth - 3, 100 + depth - 3, 55, 1))
    assert [order.order_id for order in level.orders] == [depth - 2, depth - 1]


def test_an_order_replaced_out_of_the_middle_of_a_level_leaves_it_readable() -> None:
    engine = funded_engine()
    run(engine, buy("bob", 1, 50, 1), buy("alice", 1, 50, 2), buy("carol", 1, 50, 3))
    run(engine, replace("alice", 1, 2, 45, 2))
    assert engine.depth(PUT.series) == ([(50, 4), (45, 2)], [])


def test_an_account_view_shows_positions_not_open_sells() -> None:
    engine = funded_engine()
    run(engine, sell("carol", 1, 50, 3), buy("alice", 1, 50, 3), sell("alice", 2, 60, 1))
    run(engine, sell("bob", 1, 70, 2))  # open sells, no position
    assert engine.account("alice").positions == {PUT.series: 3}
    assert engine.account("bob").positions == {}


CALL10 = ListSeries(
    SeriesId("BTC-100-1000-C10"),
    Underlying("BTC"),
    Expiry(100),
    OptionType.CALL,
    strike=Price(1000),
    multiplier=10,
    tick=Price(5),
    lot=Quantity(1),
    cap=Price(1500),
)


def test_a_call_pays_its_capped_intrinsic_value_times_the_multiplier_or_nothing() -> None:
    series = Series(0, CALL10)
    assert [series.payout_per_contract(p) for p in (900, 1000, 1200, 1500, 2000)] == [
        0,
        0,
        2000,
        5000,
        5000,
    ]


# funding, listing, a new engine


def test_deposits_add_up_in_one_account_and_one_unit_moves_either_way() -> None:
    engine = funded_engine()
    accounts = engine.counts()["accounts"]
    run(engine, deposit("alice", 1), deposit("alice", 5))
    assert engine.account("alice").cash == FUNDS + 6
    assert engine.counts()["accounts"] == accounts
    run(engine, Withdraw(AccountId("alice"), Cash(1)))
    assert engine.account("alice").cash == FUNDS + 5


def _transfer(cls: type[Deposit] | type[Withdraw], account: str, amount: int, rid: int) -> Message:
    return cls(AccountId(account), Cash(amount), OrderId(rid))


def test_a_transfer_with_a_request_id_applies_once_and_its_copy_changes_nothing() -> None:
    """Found by review: a withdrawal retried after an unknown outcome (a 504) applied twice.
    With a request_id the second copy is rejected and changes nothing, the first deposit too
    (it opens the account and records the id); without one every copy applies."""
    engine = funded_engine()
    for msg in (
        _transfer(Deposit, "dave", 700, 1),  # opens the account
        _transfer(Deposit, "alice", 50, 9),
        _transfer(Withdraw, "alice", 30, 10),
    ):
        run(engine, msg)
        before = state_without_seq(engine)
        assert engine.apply(msg).reason is RejectReason.DUPLICATE_REQUEST_ID
        assert state_without_seq(engine) == before
    assert engine.account("dave").cash == 700
    assert engine.account("alice").cash == FUNDS + 20
    run(engine, deposit("alice", 5), deposit("alice", 5))  # request_id 0: no id, both apply
    assert engine.account("alice").cash == FUNDS + 30


def test_transfers_and_orders_share_the_accounts_client_ids() -> None:
    engine = funded_engine()
    run(engine, buy("alice", 4, 100, 5))
    assert engine.apply(_transfer(Withdraw, "alice", 1, 4)).reason is (
        RejectReason.DUPLICATE_REQUEST_ID
    )
    run(engine, _transfer(Deposit, "alice", 1, 5))
    assert engine.apply(buy("alice", 5, 100, 5)).reason is RejectReason.DUPLICATE_ORDER_ID
    # the ids stay used across a snapshot
    restored = Engine.restore(engine.snapshot())
    assert restored.apply(_transfer(Deposit, "alice", 1, 5)).reason is (
        RejectReason.DUPLICATE_REQUEST_ID
    )


def test_a_refused_transfer_leaves_its_request_id_unused() -> None:
    """Only an applied transfer uses its id: a withdrawal refused for funds may be sent again
    with the same id once the funds are there, and then applies once."""
    engine = funded_engine()
    too_much = _transfer(Withdraw, "alice", FUNDS + 1, 77)
    assert engine.apply(too_much).reason is RejectReason.INSUFFICIENT_FUNDS
    assert engine.apply(_transfer(Deposit, "alice", 0, 78)).reason is RejectReason.BAD_AMOUNT
    run(engine, deposit("alice", 1), too_much, _transfer(Deposit, "alice", 3, 78))
    assert engine.account("alice").cash == 3
    assert engine.apply(too_much).reason is RejectReason.DUPLICATE_REQUEST_ID


def test_a_listing_with_strike_one_is_valid_and_a_lot_of_zero_is_not() -> None:
    engine = Engine()
    one = ListSeries(SeriesId("X-1-P"), Underlying("X"), Expiry(1), OptionType.PUT,
                     strike=Price(1), multiplier=1, tick=Price(1), lot=Quantity(1))  # fmt: skip
    run(engine, one)
    no_lot = ListSeries(SeriesId("X-2-P"), Underlying("X"), Expiry(1), OptionType.PUT,
                        strike=Price(2), multiplier=1, tick=Price(1), lot=Quantity(0))  # fmt: skip
    assert engine.apply(no_lot).reason is RejectReason.INVALID_SERIES


def test_an_uncovered_call_locks_its_capped_payout_times_the_multiplier() -> None:
    assert Series(0, CALL10).max_payout == (1500 - 1000) * 10


def test_a_new_engine_is_at_sequence_zero() -> None:
    engine = Engine()
    assert engine.seq == 0
    assert engine.apply_at(1, deposit("alice", 5)).reason is None
