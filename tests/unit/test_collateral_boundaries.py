"""The collateral check at its exact boundaries: what an account may reserve is its cash minus
what it already reserves, to the unit. Fixed examples, so an off-by-one or a dropped term is
caught by every run, not only by long property runs."""

from __future__ import annotations

from tests.unit.validator_support import (
    FUNDS,
    PUT,
    accepted,
    buy,
    funded_engine,
    sell,
    state_without_seq,
)
from validator.engine.results import RejectReason

PUT_SHORT = 1000
"""Collateral of one uncovered PUT short (strike 1000, multiplier 1)."""


def test_an_uncovered_sell_may_lock_exactly_all_free_cash_and_not_one_unit_more() -> None:
    engine = funded_engine()
    before = state_without_seq(engine)
    too_many = engine.apply(sell("alice", 1, 500, FUNDS // PUT_SHORT + 1))
    assert too_many.reason is RejectReason.INSUFFICIENT_COLLATERAL
    assert state_without_seq(engine) == before  # a rejection changes nothing
    accepted(engine.apply(sell("alice", 2, 500, FUNDS // PUT_SHORT)))
    view = engine.account("alice")
    assert view is not None and (view.cash, view.required) == (FUNDS, FUNDS)


def test_a_buy_may_reserve_exactly_its_free_premium() -> None:
    engine = funded_engine()
    price = PUT.tick * 2
    qty = FUNDS // price
    assert qty * price == FUNDS
    assert (
        engine.apply(buy("bob", 1, price, qty + 1)).reason is RejectReason.INSUFFICIENT_COLLATERAL
    )
    accepted(engine.apply(buy("bob", 2, price, qty)))
    assert engine.apply(buy("bob", 3, PUT.tick, 1)).reason is RejectReason.INSUFFICIENT_COLLATERAL


def test_what_resting_orders_reserve_is_not_free_for_the_next() -> None:
    engine = funded_engine()
    accepted(engine.apply(buy("carol", 1, 100, 4_000)))  # reserves 400,000 of premium
    free_for_shorts = (FUNDS - 400_000) // PUT_SHORT
    rejected = engine.apply(sell("carol", 2, 900, free_for_shorts + 1))
    assert rejected.reason is RejectReason.INSUFFICIENT_COLLATERAL
    accepted(engine.apply(sell("carol", 3, 900, free_for_shorts)))


def test_a_larger_short_needs_only_the_collateral_it_adds() -> None:
    engine = funded_engine()
    accepted(engine.apply(sell("alice", 1, 500, 600)))  # locks 600,000
    assert engine.apply(sell("alice", 2, 500, 401)).reason is RejectReason.INSUFFICIENT_COLLATERAL
    accepted(engine.apply(sell("alice", 3, 500, 400)))  # the other 400,000: all of it
    view = engine.account("alice")
    assert view is not None and view.required == FUNDS


def test_a_covered_sell_needs_no_collateral() -> None:
    engine = funded_engine()
    accepted(engine.apply(sell("alice", 1, 500, 10)))  # alice shorts 10 ...
    accepted(engine.apply(buy("bob", 1, 500, 10)))  # ... bob buys them: bob is long 10
    spend = engine.account("bob")
    assert spend is not None
    rest = (spend.cash - spend.required) // PUT.tick  # bob reserves all his free cash on buys
    accepted(engine.apply(buy("bob", 2, PUT.tick, rest)))
    accepted(engine.apply(sell("bob", 3, 900, 10)))  # selling what he holds locks nothing
    assert engine.apply(sell("bob", 4, 900, 1)).reason is RejectReason.INSUFFICIENT_COLLATERAL
