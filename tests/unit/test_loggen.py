"""The log generator is deterministic and produces a realistic, valid log; the engine
allocates no reference cycles while applying it."""

from __future__ import annotations

import gc
from collections import Counter

from devnet.loggen import BENCHMARK, generate
from validator.engine import Engine
from validator.engine.codec import decode_message, encode_message
from validator.engine.messages import CancelReplace, Expire, NewOrder, SettlementPrice


def test_same_seed_gives_the_same_log_and_another_seed_a_different_one() -> None:
    assert generate(3000, seed=5) == generate(3000, seed=5)
    assert generate(3000, seed=5) != generate(3000, seed=6)


def test_generated_log_round_trips_through_the_line_format() -> None:
    log = generate(2000, seed=1)
    assert [decode_message(encode_message(msg)) for msg in log] == log


def test_generated_log_is_mostly_accepted_and_covers_the_whole_life_cycle() -> None:
    engine = Engine()
    outcomes: Counter[str] = Counter()
    fills = payouts = 0
    for msg in generate(12_000, seed=3):
        result = engine.apply(msg)
        outcomes[result.reason.value if result.reason else "accepted"] += 1
        fills += len(result.fills)
        payouts += len(result.payouts)
    assert outcomes["accepted"] > 0.9 * 12_000
    assert {"bad_tick", "unknown_series", "duplicate_order_id", "insufficient_collateral"} <= set(
        outcomes
    )
    assert fills > 1000
    assert payouts > 0
    assert engine.audit() == []


def test_benchmark_flow_is_mostly_orders_and_cancels_near_the_touch() -> None:
    log = generate(30_000, seed=1, profile=BENCHMARK)
    kinds = Counter(type(msg).__name__ for msg in log)
    assert kinds["NewOrder"] > 0.4 * len(log)
    assert kinds["Cancel"] > 0.2 * len(log)
    assert kinds["CancelReplace"] > 0.05 * len(log)
    assert not any(isinstance(msg, SettlementPrice | Expire) for msg in log)
    orders = [msg for msg in log if isinstance(msg, NewOrder | CancelReplace)]
    assert len({msg.account for msg in orders}) > 1000


def test_engine_allocates_no_reference_cycles() -> None:
    """So a validator process may run with the cyclic collector off (see the benchmark)."""
    log = generate(6000, seed=2)
    gc.collect()
    gc.disable()
    try:
        engine = Engine()
        for msg in log:
            engine.apply(msg)
        restored = Engine.restore(engine.snapshot())
        restored.apply(log[-1])
        del engine, restored
        assert gc.collect() == 0
    finally:
        gc.enable()
