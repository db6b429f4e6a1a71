"""Every rejection reason, checked exactly; and a rejection changes nothing but the sequence."""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace as with_fields

from tests.unit.validator_support import (
    CALL,
    ETH_PUT,
    PUT,
    accepted,
    buy,
    deposit,
    funded_engine,
    sell,
    state_without_seq,
)
from validator.engine import Engine
from validator.engine.accounts import MAX_ID_RANGES
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    Expire,
    ListSeries,
    Message,
    SettlementPrice,
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
    Underlying,
)
from validator.engine.results import RejectReason

BTC, E100 = Underlying("BTC"), Expiry(100)


def rejected(engine: Engine, msg: Message, reason: RejectReason) -> None:
    """Apply ``msg``, expect ``reason``, and check that nothing but the sequence moved."""
    before, seq = state_without_seq(engine), engine.seq
    result = engine.apply(msg)
    assert result.reason is reason
    assert (result.fills, result.cancelled, result.payouts) == ((), (), ())
    assert state_without_seq(engine) == before
    assert engine.seq == seq + 1


def replace(account: str, order_id: int, new_id: int, price: int, qty: int) -> CancelReplace:
    return CancelReplace(AccountId(account), OrderId(order_id), OrderId(new_id), Price(price), qty)


@pytest.mark.parametrize("price", [52, 0, -5])
def test_order_price_off_the_tick_is_rejected_as_bad_tick(engine: Engine, price: int) -> None:
    rejected(engine, buy("alice", 1, price, 1), RejectReason.BAD_TICK)


@pytest.mark.parametrize("qty", [7, 0, -5])
def test_order_quantity_off_the_lot_is_rejected_as_bad_lot(engine: Engine, qty: int) -> None:
    rejected(engine, buy("alice", 1, 10, qty, series=ETH_PUT), RejectReason.BAD_LOT)


def test_order_in_an_unlisted_series_is_rejected_as_unknown_series(engine: Engine) -> None:
    unlisted = with_fields(PUT, series="NOPE")
    rejected(engine, buy("alice", 1, 50, 1, series=unlisted), RejectReason.UNKNOWN_SERIES)


def test_order_after_expiry_is_rejected_as_expired_series(engine: Engine) -> None:
    accepted(engine.apply(Expire(BTC, E100)))
    rejected(engine, buy("alice", 1, 50, 1), RejectReason.EXPIRED_SERIES)
    rejected(engine, sell("alice", 2, 50, 1, series=CALL), RejectReason.EXPIRED_SERIES)


def test_listing_into_an_expired_expiry_is_rejected_as_expired_series(engine: Engine) -> None:
    accepted(engine.apply(Expire(BTC, E100)))
    late = with_fields(PUT, series="BTC-100-900-P", strike=900)
    rejected(engine, late, RejectReason.EXPIRED_SERIES)


def test_expiring_twice_is_rejected_as_expired_series(engine: Engine) -> None:
    accepted(engine.apply(Expire(BTC, E100)))
    rejected(engine, Expire(BTC, E100), RejectReason.EXPIRED_SERIES)


def test_buy_without_the_premium_is_rejected_as_insufficient_collateral(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 499)))
    rejected(engine, buy("dave", 1, 50, 10), RejectReason.INSUFFICIENT_COLLATERAL)


def test_uncovered_put_sale_without_collateral_is_rejected(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 1999)))  # two puts need 2 * 1000
    rejected(engine, sell("dave", 1, 50, 2), RejectReason.INSUFFICIENT_COLLATERAL)


def test_uncovered_call_sale_without_collateral_is_rejected(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 999)))  # two capped calls need 2 * 500
    rejected(engine, sell("dave", 1, 50, 2, series=CALL), RejectReason.INSUFFICIENT_COLLATERAL)


def test_cancel_replace_beyond_the_cash_is_rejected_as_insufficient_collateral(
    engine: Engine,
) -> None:
    accepted(engine.apply(deposit("dave", 1000)))
    accepted(engine.apply(buy("dave", 1, 100, 10)))  # reserves all 1000
    rejected(engine, replace("dave", 1, 2, 105, 10), RejectReason.INSUFFICIENT_COLLATERAL)
    accepted(engine.apply(replace("dave", 1, 2, 50, 20)))  # same premium: fits


def test_post_only_that_would_cross_is_rejected_as_post_only_would_cross(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 1)))
    rejected(
        engine, buy("alice", 1, 50, 1, OrderKind.POST_ONLY), RejectReason.POST_ONLY_WOULD_CROSS
    )


def test_reused_client_order_id_is_rejected_as_duplicate(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    rejected(engine, buy("alice", 1, 50, 1), RejectReason.DUPLICATE_ORDER_ID)
    accepted(engine.apply(Cancel(AccountId("alice"), OrderId(1))))
    rejected(engine, buy("alice", 1, 45, 1), RejectReason.DUPLICATE_ORDER_ID)


def test_client_order_ids_are_per_account(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    accepted(engine.apply(buy("bob", 1, 50, 1)))


def test_rejected_order_does_not_use_up_its_id(engine: Engine) -> None:
    rejected(engine, buy("alice", 1, 51, 1), RejectReason.BAD_TICK)
    accepted(engine.apply(buy("alice", 1, 50, 1)))


def test_cancel_replace_to_a_used_id_is_rejected_as_duplicate(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    accepted(engine.apply(buy("alice", 2, 45, 1)))
    rejected(engine, replace("alice", 1, 2, 40, 1), RejectReason.DUPLICATE_ORDER_ID)
    rejected(engine, replace("alice", 1, 1, 40, 1), RejectReason.DUPLICATE_ORDER_ID)


def test_cancel_of_an_unknown_order_is_rejected_as_unknown_order(engine: Engine) -> None:
    rejected(engine, Cancel(AccountId("alice"), OrderId(9)), RejectReason.UNKNOWN_ORDER)
    rejected(engine, replace("alice", 9, 10, 50, 1), RejectReason.UNKNOWN_ORDER)


@pytest.mark.parametrize(
    "msg",
    [
        buy("nobody", 1, 50, 1),
        Cancel(AccountId("nobody"), OrderId(1)),
        CancelReplace(AccountId("nobody"), OrderId(1), OrderId(2), Price(50), 1),
        Withdraw(AccountId("nobody"), Cash(1)),
    ],
    ids=["order", "cancel", "replace", "withdraw"],
)
def test_input_from_an_account_without_deposits_is_rejected_as_unknown_account(
    engine: Engine, msg: Message
) -> None:
    rejected(engine, msg, RejectReason.UNKNOWN_ACCOUNT)


def test_listing_an_existing_series_id_is_rejected_as_duplicate_series(engine: Engine) -> None:
    rejected(engine, with_fields(PUT, strike=Price(900)), RejectReason.DUPLICATE_SERIES)


@pytest.mark.parametrize(
    "listing",
    [
        with_fields(PUT, series="X", strike=0),
        with_fields(PUT, series="X", multiplier=0),
        with_fields(PUT, series="X", tick=0),
        with_fields(PUT, series="X", lot=-1),
        with_fields(PUT, series="X", cap=2000),
        with_fields(CALL, series="X", cap=1000),
        with_fields(CALL, series="X", cap=0),
        ListSeries("X", BTC, E100, OptionType.CALL, Price(10), 1, Price(1), 1, Price(5)),
    ],
    ids=[
        "zero-strike",
        "zero-multiplier",
        "zero-tick",
        "negative-lot",
        "put-with-cap",
        "call-cap-at-strike",
        "call-without-cap",
        "call-cap-below-strike",
    ],
)
def test_listing_with_bad_parameters_is_rejected_as_invalid_series(
    engine: Engine, listing: ListSeries
) -> None:
    rejected(engine, listing, RejectReason.INVALID_SERIES)


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_deposit_is_rejected_as_bad_amount(engine: Engine, amount: int) -> None:
    rejected(engine, deposit("alice", amount), RejectReason.BAD_AMOUNT)


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_withdrawal_is_rejected_as_bad_amount(engine: Engine, amount: int) -> None:
    rejected(engine, Withdraw(AccountId("alice"), Cash(amount)), RejectReason.BAD_AMOUNT)


def test_withdrawing_reserved_cash_is_rejected_as_insufficient_funds(engine: Engine) -> None:
    accepted(engine.apply(deposit("dave", 1000)))
    accepted(engine.apply(buy("dave", 1, 50, 10)))  # reserves 500
    rejected(engine, Withdraw(AccountId("dave"), Cash(501)), RejectReason.INSUFFICIENT_FUNDS)
    accepted(engine.apply(Withdraw(AccountId("dave"), Cash(500))))


def test_negative_settlement_price_is_rejected_as_bad_price(engine: Engine) -> None:
    rejected(engine, SettlementPrice(BTC, E100, Price(-1)), RejectReason.BAD_PRICE)


def test_settlement_price_after_settlement_is_rejected_as_already_settled(engine: Engine) -> None:
    accepted(engine.apply(SettlementPrice(BTC, E100, Price(900))))
    accepted(engine.apply(Expire(BTC, E100)))
    rejected(engine, SettlementPrice(BTC, E100, Price(950)), RejectReason.ALREADY_SETTLED)


@pytest.mark.parametrize(
    "msg",
    [SettlementPrice(BTC, Expiry(999), Price(1)), Expire(Underlying("DOGE"), E100)],
    ids=["settlement-price", "expire"],
)
def test_expiry_input_without_series_is_rejected_as_unknown_series(
    engine: Engine, msg: Message
) -> None:
    rejected(engine, msg, RejectReason.UNKNOWN_SERIES)


def test_every_reject_reason_has_a_test() -> None:
    source = Path(__file__).read_text()
    missing = [
        reason.name for reason in RejectReason if f"RejectReason.{reason.name}" not in source
    ]
    assert missing == []


def test_an_id_that_would_start_one_range_too_many_is_rejected(engine: Engine) -> None:
    """Found by review: every id that starts a range of its own is an insert into a list, so an
    account numbering cheap orders backwards (IOCs that trade nothing) made each order cost
    time linear in how many it had sent, on every node. Past MAX_ID_RANGES ranges, an id that
    would start one more is refused; ids next to used ones still go."""
    engine.apply(deposit("m", 10**6))

    def ioc(order_id: int) -> Message:
        return buy("m", order_id, 5, 1, kind=OrderKind.IOC)  # no asks: it trades nothing

    for k in range(1, MAX_ID_RANGES + 1):  # 2, 4, ..., 2 * MAX: MAX separate ranges
        accepted(engine.apply(ioc(2 * k)))
    top = 2 * MAX_ID_RANGES
    rejected(engine, ioc(top + 10), RejectReason.TOO_MANY_ORDER_ID_GAPS)
    rejected(engine, ioc(-7), RejectReason.TOO_MANY_ORDER_ID_GAPS)
    accepted(engine.apply(buy("m", top + 1, 5, 1)))  # next to the last used one: it rests
    rejected(engine, replace("m", top + 1, top + 10, 5, 1), RejectReason.TOO_MANY_ORDER_ID_GAPS)
    accepted(engine.apply(ioc(3)))  # joins 2 and 4: one range fewer
    accepted(engine.apply(replace("m", top + 1, top + 10, 5, 1)))  # so one more may start
    rejected(engine, ioc(top + 20), RejectReason.TOO_MANY_ORDER_ID_GAPS)
    rejected(engine, ioc(4), RejectReason.DUPLICATE_ORDER_ID)  # a used id is still that first


def test_a_transfer_reusing_a_client_id_is_rejected_and_so_is_one_past_the_gap_limit(
    engine: Engine,
) -> None:
    """A deposit's or withdrawal's request_id is one of the account's client ids, like an order
    id: a used one is refused (``duplicate_request_id``), and past MAX_ID_RANGES separate ranges
    an id that would start another is refused too (``too_many_order_id_gaps``)."""
    engine.apply(deposit("t", 10**6))
    accepted(engine.apply(Deposit(AccountId("t"), Cash(1), OrderId(5))))
    rejected(
        engine, Deposit(AccountId("t"), Cash(1), OrderId(5)), RejectReason.DUPLICATE_REQUEST_ID
    )
    rejected(
        engine, Withdraw(AccountId("t"), Cash(1), OrderId(5)), RejectReason.DUPLICATE_REQUEST_ID
    )
    for k in range(2, MAX_ID_RANGES + 1):  # 5 is one range; 10, 20, ... make MAX of them
        accepted(engine.apply(Withdraw(AccountId("t"), Cash(1), OrderId(10 * k))))
    rejected(
        engine, Deposit(AccountId("t"), Cash(1), OrderId(-3)), RejectReason.TOO_MANY_ORDER_ID_GAPS
    )
    rejected(
        engine, Withdraw(AccountId("t"), Cash(1), OrderId(7)), RejectReason.TOO_MANY_ORDER_ID_GAPS
    )
    accepted(engine.apply(Withdraw(AccountId("t"), Cash(1), OrderId(6))))  # next to 5: it goes


def test_at_the_gap_limit_an_id_just_below_a_used_range_joins_it_and_two_below_does_not() -> None:
    """Kills accounts.xǁAccountǁopens_id_range__mutmut_16 (joins_right = None), _20
    (starts[i] == order_id - 1) and _21 (starts[i] == order_id + 2): the existing gap-limit
    tests only ever join a range from its left (an id one past a range's end)."""
    engine = funded_engine()

    def ioc(order_id: int) -> Message:
        return buy("alice", order_id, 5, 1, kind=OrderKind.IOC)  # no asks: trades nothing

    for k in range(1, MAX_ID_RANGES + 1):  # 10, 20, ..., 10 * MAX: MAX separate ranges
        accepted(engine.apply(ioc(10 * k)))
    accepted(engine.apply(ioc(9)))  # the id right below 10 joins its range from the right
    result = engine.apply(ioc(18))  # two below 20 (and not next to 10): one range too many
    assert result.reason is RejectReason.TOO_MANY_ORDER_ID_GAPS
    assert engine._state.accounts_by_id[AccountId("alice")].used_id_ranges()[:2] == [
        [9, 10],
        [20, 20],
    ]
