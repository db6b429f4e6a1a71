"""Settlement ledger: premium, reservations, collateral, withdrawals, cash settlement at
expiry, and conservation of cash and positions."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.validator_support import CALL, ETH_PUT, FUNDS, PUT, accepted, buy, deposit, sell
from validator.engine import Engine
from validator.engine.accounts import Account
from validator.engine.messages import Cancel, Expire, SettlementPrice, Withdraw
from validator.engine.primitives import AccountId, Cash, Expiry, OrderId, Price, Underlying
from validator.engine.results import CancelledOrder, Payout

BTC, E100 = Underlying("BTC"), Expiry(100)
P, C = PUT.series, CALL.series


def settle(engine: Engine, price: int) -> tuple[Payout, ...]:
    accepted(engine.apply(Expire(BTC, E100)))
    return accepted(engine.apply(SettlementPrice(BTC, E100, Price(price)))).payouts


def test_fill_moves_premium_from_buyer_to_seller(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    assert engine.account("alice").cash == FUNDS - 150
    assert engine.account("bob").cash == FUNDS + 150
    assert engine.positions(P) == {"alice": 3, "bob": -3}


def test_premium_scales_with_the_contract_multiplier(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 20, 5, series=ETH_PUT)))
    accepted(engine.apply(buy("alice", 1, 20, 5, series=ETH_PUT)))
    assert engine.account("alice").cash == FUNDS - 20 * 5 * 10


def test_buyer_with_exactly_the_premium_is_accepted(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 500)))
    accepted(engine.apply(buy("dave", 1, 50, 10)))
    assert engine.account("dave").available == 0


def test_resting_buy_reserves_premium_at_its_limit(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 4)))
    assert engine.account("alice").required == 200
    assert engine.account("alice").cash == FUNDS


def test_fill_below_the_limit_releases_the_difference(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 40, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 4)))  # 2 fill at 40, 2 rest at 50
    alice = engine.account("alice")
    assert alice.cash == FUNDS - 80
    assert alice.required == 100


def test_uncovered_short_put_locks_strike_times_multiplier(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    assert engine.account("bob").required == 3 * 1000
    accepted(engine.apply(sell("bob", 2, 20, 5, series=ETH_PUT)))
    assert engine.account("bob").required == 3 * 1000 + 5 * 300 * 10


def test_uncovered_short_call_locks_cap_minus_strike(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3, series=CALL)))
    assert engine.account("bob").required == 3 * 500


def test_collateral_stays_locked_once_the_sale_fills(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    bob = engine.account("bob")
    assert bob.required == 3000
    assert bob.available == FUNDS + 150 - 3000


def test_sale_covered_by_a_long_position_locks_nothing(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    accepted(engine.apply(sell("alice", 2, 60, 3)))
    assert engine.account("alice").required == 0


def test_partly_covered_sale_locks_only_the_uncovered_part(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    accepted(engine.apply(sell("alice", 2, 60, 5)))
    assert engine.account("alice").required == 3 * 1000


def test_covered_sale_is_accepted_without_free_cash(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 100)))
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    accepted(engine.apply(buy("dave", 1, 50, 2)))
    assert engine.account("dave").available == 0
    accepted(engine.apply(sell("dave", 2, 60, 2)))


def test_buying_back_a_short_releases_its_collateral(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    accepted(engine.apply(sell("alice", 2, 40, 3)))
    accepted(engine.apply(buy("bob", 2, 40, 3)))
    bob = engine.account("bob")
    assert bob.positions == {}
    assert bob.required == 0
    assert bob.cash == FUNDS + 150 - 120


def test_resting_buy_that_fills_releases_the_makers_short_collateral(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))  # bob short 3
    accepted(engine.apply(buy("bob", 2, 40, 3)))  # bob's bid rests
    accepted(engine.apply(sell("alice", 2, 40, 3)))  # and is hit
    assert engine.account("bob").required == 0


def test_cancel_of_a_sale_releases_its_collateral(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(Cancel(AccountId("bob"), OrderId(1))))
    assert engine.account("bob").required == 0


def test_withdrawal_takes_only_free_cash(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(Withdraw(AccountId("bob"), Cash(FUNDS - 3000))))
    assert engine.account("bob").cash == 3000
    assert engine.account("bob").available == 0


def test_in_the_money_put_pays_intrinsic_value_short_to_long(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    payouts = settle(engine, 900)
    assert payouts == (
        Payout(P, AccountId("alice"), 3, 300),
        Payout(P, AccountId("bob"), -3, -300),
    )
    assert engine.account("alice").cash == FUNDS - 150 + 300
    assert engine.account("bob").cash == FUNDS + 150 - 300
    assert engine.account("bob").required == 0
    assert engine.positions(P) == {}


def test_put_settled_at_zero_pays_the_whole_collateral(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 1000)))
    accepted(engine.apply(sell("dave", 1, 50, 1)))
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    settle(engine, 0)
    assert engine.account("dave").cash == 50
    assert engine.account("dave").required == 0


def test_call_pays_up_to_its_cap(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2, series=CALL)))
    accepted(engine.apply(buy("alice", 1, 50, 2, series=CALL)))
    payouts = settle(engine, 9000)
    assert payouts[0] == Payout(C, AccountId("alice"), 2, 2 * 500)


def test_call_between_strike_and_cap_pays_the_difference(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2, series=CALL)))
    accepted(engine.apply(buy("alice", 1, 50, 2, series=CALL)))
    assert settle(engine, 1200)[0] == Payout(C, AccountId("alice"), 2, 400)


def test_out_of_the_money_expiry_pays_nothing_and_releases_collateral(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    payouts = settle(engine, 1000)
    assert [p.amount for p in payouts] == [0, 0]
    assert engine.account("bob").cash == FUNDS + 150
    assert engine.account("bob").required == 0


def test_expire_cancels_resting_orders_and_releases_reservations(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    accepted(engine.apply(sell("bob", 1, 60, 1, series=CALL)))
    accepted(engine.apply(sell("bob", 2, 20, 5, series=ETH_PUT)))
    result = accepted(engine.apply(Expire(BTC, E100)))
    assert result.cancelled == (
        CancelledOrder(AccountId("bob"), 1, 1),
        CancelledOrder(AccountId("alice"), 1, 2),
    )
    assert engine.account("alice").required == 0
    assert engine.account("bob").required == 5 * 300 * 10  # the ETH order lives on
    assert engine.depth(ETH_PUT.series) == ([], [(20, 5)])


def test_positions_wait_for_the_settlement_price_after_expiry(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    result = accepted(engine.apply(Expire(BTC, E100)))
    assert result.payouts == ()
    assert engine.account("bob").required == 3000
    assert engine.positions(P) == {"alice": 3, "bob": -3}


def test_settlement_price_known_before_expiry_settles_at_expiry(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 3)))
    accepted(engine.apply(SettlementPrice(BTC, E100, Price(800))))
    accepted(engine.apply(SettlementPrice(BTC, E100, Price(900))))  # revised
    result = accepted(engine.apply(Expire(BTC, E100)))
    assert result.payouts[0] == Payout(P, AccountId("alice"), 3, 300)


def test_cash_is_conserved_apart_from_deposits_and_withdrawals(engine: Engine) -> None:
    start = engine.total_cash()
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 55, 5)))
    accepted(engine.apply(sell("carol", 1, 55, 2, series=CALL)))
    accepted(engine.apply(buy("bob", 2, 60, 2, series=CALL)))
    assert engine.total_cash() == start
    accepted(engine.apply(deposit("dave", 77)))
    accepted(engine.apply(Withdraw(AccountId("alice"), Cash(10))))
    assert engine.total_cash() == start + 67
    settle(engine, 700)
    assert engine.total_cash() == start + 67
    assert engine.audit() == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=60))
def test_used_client_order_ids_behave_like_a_set(ids: list[int]) -> None:
    account, model = Account(0, AccountId("alice")), set()
    for order_id in ids:
        assert account.id_used(order_id) == (order_id in model)
        if order_id not in model:
            account.use_id(order_id)
            model.add(order_id)
    assert all(account.id_used(i) == (i in model) for i in range(-7, 43))
    ranges = account.used_id_ranges()
    assert {i for first, last in ranges for i in range(first, last + 1)} == model
    assert all(b[0] > a[1] + 1 for a, b in pairwise(ranges))


def test_used_client_order_ids_take_memory_per_gap_not_per_id() -> None:
    account = Account(0, AccountId("alice"))
    for order_id in [*range(5, 1000), 1001, 1002]:
        account.use_id(order_id)
    assert account.used_id_ranges() == [[5, 999], [1001, 1002]]
    account.use_id(1000)
    assert account.used_id_ranges() == [[5, 1002]]
