"""Order types and book behaviour: GTC, IOC, post-only, cancel, cancel-replace,
price-time priority, self-trade prevention, and a book that is never crossed."""

from __future__ import annotations

from tests.unit.validator_support import CALL, accepted, buy, funded_engine, sell
from validator.engine import Engine
from validator.engine.book import COMPACT_SLACK, Book
from validator.engine.messages import Cancel, CancelReplace
from validator.engine.primitives import AccountId, OrderId, OrderKind, Price, Quantity
from validator.engine.records import Holding, Order
from validator.engine.results import CancelledOrder, Fill, RejectReason

P = "BTC-100-1000-P"


def cancel(account: str, order_id: int) -> Cancel:
    return Cancel(AccountId(account), OrderId(order_id))


def replace(account: str, order_id: int, new_id: int, price: int, qty: int) -> CancelReplace:
    return CancelReplace(
        AccountId(account), OrderId(order_id), OrderId(new_id), Price(price), Quantity(qty)
    )


def test_gtc_order_with_no_counterparty_rests(engine: Engine) -> None:
    result = accepted(engine.apply(buy("alice", 1, 50, 3)))
    assert result.fills == ()
    assert engine.depth(P) == ([(50, 3)], [])
    assert engine.account("alice").orders == [1]


def test_gtc_buy_crossing_an_ask_trades_at_the_makers_price(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    result = accepted(engine.apply(buy("alice", 1, 60, 3)))
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 3),)
    assert engine.depth(P) == ([], [])


def test_gtc_sell_crossing_a_bid_trades_at_the_makers_price(engine: Engine) -> None:
    accepted(engine.apply(buy("bob", 1, 60, 3)))
    result = accepted(engine.apply(sell("alice", 1, 50, 2)))
    assert result.fills == (Fill(AccountId("bob"), 1, 60, 2),)
    assert engine.depth(P) == ([(60, 1)], [])


def test_orders_at_the_same_price_fill_oldest_first(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    accepted(engine.apply(sell("carol", 1, 50, 2)))
    accepted(engine.apply(sell("bob", 2, 50, 2)))
    result = accepted(engine.apply(buy("alice", 1, 50, 5)))
    assert [(f.maker, f.maker_order, f.qty) for f in result.fills] == [
        ("bob", 1, 2),
        ("carol", 1, 2),
        ("bob", 2, 1),
    ]
    assert engine.depth(P) == ([], [(50, 1)])


def test_better_price_fills_before_an_older_worse_price(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 1)))
    accepted(engine.apply(sell("carol", 1, 55, 1)))
    result = accepted(engine.apply(buy("alice", 1, 60, 2)))
    assert [(f.maker, f.price) for f in result.fills] == [("carol", 55), ("bob", 60)]


def test_order_sweeps_several_levels_then_rests_the_rest_at_its_limit(engine: Engine) -> None:
    for i, price in enumerate((50, 55, 60, 70), start=1):
        accepted(engine.apply(sell("bob", i, price, 1)))
    result = accepted(engine.apply(buy("alice", 1, 60, 5)))
    assert [f.price for f in result.fills] == [50, 55, 60]
    assert engine.depth(P) == ([(60, 2)], [(70, 1)])


def test_partially_filled_maker_keeps_its_place_at_the_front(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 5)))
    accepted(engine.apply(sell("carol", 1, 50, 5)))
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    result = accepted(engine.apply(buy("alice", 2, 50, 4)))
    assert [(f.maker, f.qty) for f in result.fills] == [("bob", 3), ("carol", 1)]


def test_ioc_trades_what_it_can_and_drops_the_rest(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    result = accepted(engine.apply(buy("alice", 1, 55, 5, OrderKind.IOC)))
    assert result.fills == (Fill(AccountId("bob"), 1, 50, 2),)
    assert engine.depth(P) == ([], [])
    assert engine.account("alice").orders == []
    assert engine.account("alice").required == 0


def test_ioc_with_nothing_to_trade_is_accepted_without_fills(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    result = accepted(engine.apply(buy("alice", 1, 55, 5, OrderKind.IOC)))
    assert result.fills == ()
    assert engine.depth(P) == ([], [(60, 2)])


def test_ioc_id_is_used_even_when_nothing_traded(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 55, 5, OrderKind.IOC)))
    assert engine.apply(buy("alice", 1, 55, 5)).reason is RejectReason.DUPLICATE_ORDER_ID


def test_post_only_that_does_not_cross_rests(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    result = accepted(engine.apply(buy("alice", 1, 55, 5, OrderKind.POST_ONLY)))
    assert result.fills == ()
    assert engine.depth(P) == ([(55, 5)], [(60, 2)])


def test_post_only_that_would_cross_is_rejected(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    result = engine.apply(buy("alice", 1, 60, 5, OrderKind.POST_ONLY))
    assert result.reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.depth(P) == ([], [(60, 2)])


def test_post_only_sell_that_would_cross_is_rejected(engine: Engine) -> None:
    accepted(engine.apply(buy("bob", 1, 60, 2)))
    result = engine.apply(sell("alice", 1, 55, 5, OrderKind.POST_ONLY))
    assert result.reason is RejectReason.POST_ONLY_WOULD_CROSS


def test_cancel_removes_the_order_and_releases_its_reservation(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    assert engine.account("alice").required == 150
    accepted(engine.apply(cancel("alice", 1)))
    assert engine.depth(P) == ([], [])
    assert engine.account("alice").required == 0
    assert engine.account("alice").orders == []


def test_cancel_of_a_filled_order_is_rejected_as_unknown(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    assert engine.apply(cancel("bob", 1)).reason is RejectReason.UNKNOWN_ORDER


def test_cancel_of_another_accounts_order_is_rejected_as_unknown(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    assert engine.apply(cancel("alice", 1)).reason is RejectReason.UNKNOWN_ORDER
    assert engine.depth(P) == ([], [(50, 3)])


def test_cancel_replace_moves_the_order_and_loses_time_priority(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    accepted(engine.apply(sell("carol", 1, 50, 2)))
    accepted(engine.apply(replace("bob", 1, 2, 50, 2)))
    result = accepted(engine.apply(buy("alice", 1, 50, 2)))
    assert result.fills == (Fill(AccountId("carol"), 1, 50, 2),)
    assert engine.account("bob").orders == [2]


def test_cancel_replace_changes_price_and_quantity(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    accepted(engine.apply(replace("alice", 1, 2, 45, 6)))
    assert engine.depth(P) == ([(45, 6)], [])
    assert engine.account("alice").required == 45 * 6


def test_cancel_replace_that_crosses_trades(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    result = accepted(engine.apply(replace("alice", 1, 2, 60, 3)))
    assert result.fills == (Fill(AccountId("bob"), 1, 60, 2),)
    assert engine.depth(P) == ([(60, 1)], [])


def test_rejected_cancel_replace_leaves_the_original_untouched(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    result = engine.apply(replace("alice", 1, 2, 51, 2))
    assert result.reason is RejectReason.BAD_TICK
    assert engine.depth(P) == ([(50, 2)], [])
    assert engine.account("alice").orders == [1]
    accepted(engine.apply(replace("alice", 1, 2, 55, 2)))  # the new id was not used up


def test_cancel_replace_of_a_post_only_order_stays_post_only(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 60, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 2, OrderKind.POST_ONLY)))
    result = engine.apply(replace("alice", 1, 2, 60, 2))
    assert result.reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.depth(P) == ([(50, 2)], [(60, 2)])


def test_self_trade_prevention_cancels_the_resting_order(engine: Engine) -> None:
    accepted(engine.apply(sell("alice", 1, 50, 2)))
    result = accepted(engine.apply(buy("alice", 2, 50, 3)))
    assert result.fills == ()
    assert result.cancelled == (CancelledOrder(AccountId("alice"), 1, 2),)
    assert engine.depth(P) == ([(50, 3)], [])
    assert engine.account("alice").orders == [2]
    assert engine.account("alice").positions == {}


def test_self_trade_prevention_keeps_matching_other_makers(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 1)))
    accepted(engine.apply(sell("alice", 1, 50, 1)))
    accepted(engine.apply(sell("carol", 1, 50, 1)))
    result = accepted(engine.apply(sell("bob", 2, 45, 5)))  # bob's sell rests below
    result = accepted(engine.apply(buy("bob", 3, 50, 3)))
    assert result.cancelled == (
        CancelledOrder(AccountId("bob"), 2, 5),
        CancelledOrder(AccountId("bob"), 1, 1),
    )
    assert [(f.maker, f.qty) for f in result.fills] == [("alice", 1), ("carol", 1)]
    assert engine.depth(P) == ([(50, 1)], [])


def test_book_is_never_left_crossed_after_a_gtc_sweep(engine: Engine) -> None:
    for i, price in enumerate((50, 55, 60), start=1):
        accepted(engine.apply(sell("bob", i, price, 1)))
    accepted(engine.apply(buy("alice", 1, 100, 10)))
    bids, asks = engine.depth(P)
    assert bids == [(100, 7)]
    assert asks == []


def test_orders_in_different_series_do_not_meet(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 1)))
    result = accepted(engine.apply(buy("alice", 1, 50, 1, series=CALL)))
    assert result.fills == ()
    assert engine.depth(CALL.series) == ([(50, 1)], [])


def test_cancelling_most_of_a_deep_level_compacts_it_and_keeps_time_order(
    engine: Engine,
) -> None:
    depth = 4 * COMPACT_SLACK
    for i in range(depth):
        accepted(engine.apply(sell("bob", i, 50, 1)))
    for i in range(depth - 1):  # cancel all but the newest, oldest first
        accepted(engine.apply(cancel("bob", i)))
    accepted(engine.apply(sell("carol", 1, 50, 1)))
    result = accepted(engine.apply(buy("alice", 1, 50, 2)))
    assert [(f.maker, f.maker_order) for f in result.fills] == [("bob", depth - 1), ("carol", 1)]
    assert engine.audit() == []


def test_level_keeps_dead_records_below_the_compaction_threshold() -> None:
    book = Book()
    orders = [Order(1, 50, 0, i, 0, 0, 0, Holding()) for i in range(COMPACT_SLACK + 4)]
    for record in orders:
        book.rest(record)
    book.remove(orders[1])
    book.remove(orders[2])
    level = book.asks[50]
    assert level.live == len(orders) - 2
    assert len(level.records()) == len(orders)  # lazy: still there, but dead
    assert [o.order_id for o in book.orders(0)] == [o.order_id for o in orders if o.qty]


def test_best_bid_and_best_ask_are_the_inside_prices() -> None:
    book = Book()
    assert book.best_bid() is None and book.best_ask() is None
    for price, order_id in ((40, 1), (45, 2), (42, 3)):
        book.rest(Order(1, price, 0, order_id, 0, 1, 0, Holding()))  # buys
    assert book.best_bid() == 45 and book.best_ask() is None
    for price, order_id in ((55, 4), (50, 5), (60, 6)):
        book.rest(Order(1, price, 0, order_id, 0, 0, 0, Holding()))  # sells
    assert (book.best_bid(), book.best_ask()) == (45, 50)


def test_apply_many_is_apply_in_order(engine: Engine) -> None:
    twin = funded_engine()
    msgs = [buy("alice", 1, 50, 3), sell("bob", 2, 50, 2), buy("alice", 1, 40, 1)]
    assert engine.apply_many(msgs) == [twin.apply(m) for m in msgs]
    assert engine.state_hash() == twin.state_hash()


def test_is_crossed_compares_the_best_bid_with_the_best_ask() -> None:
    book = Book()
    assert not book.is_crossed()
    book.rest(Order(1, 50, 0, 1, 0, 1, 0, Holding()))  # buy 50
    assert not book.is_crossed()  # no asks
    for price, order_id in ((40, 2), (45, 3)):
        book.rest(Order(1, price, 0, order_id, 0, 1, 0, Holding()))  # buys below the best
    book.rest(Order(1, 51, 0, 4, 0, 0, 0, Holding()))  # sell 51: not crossed
    assert not book.is_crossed()
    book.rest(Order(1, 50, 0, 5, 0, 0, 0, Holding()))  # sell 50 = best bid: crossed (never rested)
    assert book.is_crossed()
