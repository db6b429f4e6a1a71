"""Property tests over random input logs: conservation, no negative cash, a book that is
never crossed, snapshot/restore equivalence and run-to-run determinism."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace as with_fields

from tests.unit.validator_support import CALL, ETH_PUT, PUT, funded_engine, state_without_seq
from validator.engine import Engine, snapshot
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
from validator.engine.primitives import (
    AccountId,
    Cash,
    Expiry,
    OrderId,
    OrderKind,
    Price,
    Quantity,
    Side,
    Underlying,
)
from validator.engine.results import Result

ACCOUNTS = ["alice", "bob", "carol", "dave", "erin"]
"""alice, bob and carol start rich, dave starts poor, erin has no account until she deposits."""
LISTINGS = [PUT, CALL, ETH_PUT, with_fields(PUT, series="BTC-100-1200-P", strike=Price(1200))]
EXPIRIES = [(Underlying("BTC"), Expiry(100)), (Underlying("ETH"), Expiry(200))]
#: examples per property: 150 in the default run; ENGINE_PROPERTY_EXAMPLES=3000 (say) for a long one
EXAMPLES = int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "150"))

accounts = st.sampled_from([*ACCOUNTS, "alice", "bob", "carol"]).map(AccountId)
order_ids = st.integers(0, 11).map(OrderId)
# Mostly on the tick grid around a common touch, sometimes anywhere.
prices = (
    st.sampled_from(["touch"] * 6 + ["grid", "any"])
    .flatmap(
        lambda where: {
            "touch": st.integers(4, 8).map(lambda k: k * 10),
            "grid": st.integers(1, 12).map(lambda k: k * 10),
            "any": st.integers(-3, 130),
        }[where]
    )
    .map(Price)
)
quantities = st.one_of(st.integers(1, 4).map(lambda k: k * 5), st.integers(-1, 12)).map(Quantity)
series_ids = st.sampled_from([PUT] * 4 + [CALL] * 2 + LISTINGS[2:]).map(lambda item: item.series)

new_orders = st.builds(
    NewOrder,
    accounts,
    order_ids,
    series_ids,
    st.sampled_from(Side),
    prices,
    quantities,
    st.sampled_from([OrderKind.GTC, OrderKind.GTC, OrderKind.IOC, OrderKind.POST_ONLY]),
)
cancels = st.builds(Cancel, accounts, order_ids)
replaces = st.builds(
    CancelReplace, accounts, order_ids, st.integers(13, 30).map(OrderId), prices, quantities
)
request_ids = st.one_of(st.just(OrderId(0)), order_ids)  # 0: none; else shared with orders
cash_moves = st.one_of(
    st.builds(Deposit, accounts, st.integers(-10, 5000).map(Cash), request_ids),
    st.builds(Withdraw, accounts, st.integers(-10, 5000).map(Cash), request_ids),
)
expiry_inputs = st.one_of(
    st.sampled_from(EXPIRIES).flatmap(
        lambda key: st.builds(
            SettlementPrice, st.just(key[0]), st.just(key[1]), st.integers(-5, 2000).map(Price)
        )
    ),
    st.sampled_from(EXPIRIES).map(lambda key: Expire(*key)),
    st.sampled_from(LISTINGS),
)
# Weighted: orders dominate, expiries are rare so that trading goes on for a while.
kinds_of_input: list[st.SearchStrategy[Message]] = [
    *[new_orders] * 24,
    *[cancels] * 6,
    *[replaces] * 4,
    *[cash_moves] * 2,
    expiry_inputs,
]
messages: st.SearchStrategy[Message] = st.sampled_from(kinds_of_input).flatmap(lambda kind: kind)
logs = st.lists(messages, min_size=30, max_size=150)

fast = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def start() -> tuple[Engine, list[ListSeries]]:
    """A funded engine with the first three listings; the fourth is listed by the log."""
    engine = funded_engine()
    engine.apply(Deposit(AccountId("dave"), Cash(1500)))
    return engine, LISTINGS


def check_invariants(engine: Engine, listings: list[ListSeries]) -> None:
    for listing in listings:
        bids, asks = engine.depth(listing.series)
        assert not (bids and asks and bids[0][0] >= asks[0][0]), "book crossed"
        assert sum(engine.positions(listing.series).values()) == 0, "positions do not net out"
    for name in ACCOUNTS:
        view = engine.account(name)
        if view is not None:
            assert view.cash >= 0, f"{name} has negative cash"
            assert 0 <= view.required <= view.cash, f"{name} has more locked than cash"
    assert engine.audit() == []


def run(engine: Engine, log: list[Message]) -> list[Result]:
    return [engine.apply(msg) for msg in log]


settlement_prices = st.lists(st.integers(0, 2000).map(Price), min_size=2, max_size=2)


@fast
@given(logs, settlement_prices)
def test_cash_and_positions_are_conserved_and_the_book_never_crosses(
    log: list[Message], final_prices: list[Price]
) -> None:
    engine, listings = start()
    cash = engine.total_cash()
    # Whatever happened, settle both expiries at the end so every log exercises settlement.
    for (underlying, expiry), price in zip(EXPIRIES, final_prices, strict=True):
        log = [*log, SettlementPrice(underlying, expiry, price), Expire(underlying, expiry)]
    for msg in log:
        result = engine.apply(msg)
        if result.accepted and isinstance(msg, Deposit):
            cash += msg.amount
        elif result.accepted and isinstance(msg, Withdraw):
            cash -= msg.amount
        assert engine.total_cash() == cash
        check_invariants(engine, listings)
    for name in ACCOUNTS:
        view = engine.account(name)
        assert view is None or (view.positions, view.required, view.orders) == ({}, 0, [])


@fast
@given(logs)
def test_a_rejected_input_changes_nothing_but_the_sequence(log: list[Message]) -> None:
    engine, _ = start()
    for msg in log:
        before = state_without_seq(engine)
        result = engine.apply(msg)
        if not result.accepted:
            assert state_without_seq(engine) == before


@fast
@given(logs, st.data())
def test_snapshot_restore_continue_matches_an_uninterrupted_run(
    log: list[Message], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)), label="cut")
    straight, _ = start()
    straight_results = run(straight, log)

    first, _ = start()
    results = run(first, log[:cut])
    resumed = Engine.restore(first.snapshot())
    assert resumed.state_hash() == first.state_hash()
    results += run(resumed, log[cut:])

    assert results == straight_results
    assert resumed.state_hash() == straight.state_hash()
    assert resumed.seq == straight.seq == len(log) + straight.seq - len(log)


@fast
@given(logs)
def test_two_independent_runs_give_identical_hashes(log: list[Message]) -> None:
    one, _ = start()
    two, _ = start()
    hashes_one = []
    hashes_two = []
    for msg in log:
        one.apply(msg)
        hashes_one.append(one.state_hash())
    for msg in log:
        two.apply(msg)
        hashes_two.append(two.state_hash())
    assert hashes_one == hashes_two


@fast
@given(logs, settlement_prices, st.data())
def test_the_snapshot_kept_up_to_date_is_the_one_written_from_scratch(
    log: list[Message], final_prices: list[Price], data: st.DataObject
) -> None:
    # Snapshots at drawn moments (after one input, after many), so that parts stay kept across
    # every kind of change before they are compared; both expiries settle at the end.
    engine, _ = start()
    state = engine._state
    for (underlying, expiry), price in zip(EXPIRIES, final_prices, strict=True):
        log = [*log, SettlementPrice(underlying, expiry, price), Expire(underlying, expiry)]
    for msg in log:
        engine.apply(msg)
        if data.draw(st.booleans(), label="snapshot now"):
            assert snapshot.dump(state) == snapshot.dump_from_scratch(state)
    assert snapshot.dump(state) == snapshot.dump_from_scratch(state)
