"""The engine's contract with a log consumer: sequence numbers, errors, read-only views."""

from __future__ import annotations

import pytest

from tests.unit.validator_support import PUT, accepted, buy, deposit, sell
from validator.engine import Engine
from validator.engine.errors import MessageError, SequenceError, ValidatorError
from validator.engine.primitives import AccountId
from validator.engine.results import ACCEPTED, RejectReason


def test_every_input_takes_the_next_sequence_number_even_when_rejected(engine: Engine) -> None:
    seq = engine.seq
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    assert engine.apply(buy("alice", 1, 50, 1)).reason is RejectReason.DUPLICATE_ORDER_ID
    assert engine.seq == seq + 2


def test_apply_at_accepts_the_next_sequence_number(engine: Engine) -> None:
    assert engine.apply_at(engine.seq + 1, deposit("alice", 5)) is ACCEPTED


@pytest.mark.parametrize("offset", [0, 2, -3])
def test_apply_at_any_other_sequence_number_raises_and_changes_nothing(
    engine: Engine, offset: int
) -> None:
    seq, before = engine.seq, engine.state_hash()
    with pytest.raises(SequenceError) as caught:
        engine.apply_at(seq + offset, deposit("alice", 5))
    assert (caught.value.expected, caught.value.got) == (seq + 1, seq + offset)
    assert (engine.seq, engine.state_hash()) == (seq, before)
    assert isinstance(caught.value, ValidatorError)


def test_applying_something_that_is_not_a_message_raises_message_error(engine: Engine) -> None:
    seq = engine.seq
    with pytest.raises(MessageError, match="not an input message: dict"):
        engine.apply({"type": "deposit"})  # type: ignore[arg-type]
    assert engine.seq == seq


def test_views_of_unknown_things_are_empty(engine: Engine) -> None:
    assert engine.account("nobody") is None
    assert engine.depth("NO-SUCH-SERIES") == ([], [])
    assert engine.positions("NO-SUCH-SERIES") == {}


def test_views_are_copies(engine: Engine) -> None:
    accepted(engine.apply(sell("bob", 1, 50, 2)))
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    view = engine.account("alice")
    assert view is not None
    view.positions[PUT.series] = 99
    assert engine.positions(PUT.series) == {AccountId("alice"): 2, AccountId("bob"): -2}


def test_counts_and_series_ids(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    assert engine.counts() == {"accounts": 3, "series": 3, "trading_series": 3, "resting_orders": 1}
    assert engine.series_ids() == sorted(engine.series_ids())


def test_a_new_engine_has_a_stable_state_hash() -> None:
    assert Engine().state_hash() == Engine().state_hash()
    assert Engine().state_hash().hex() == Engine.restore(Engine().snapshot()).state_hash().hex()
