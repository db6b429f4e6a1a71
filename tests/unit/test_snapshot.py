"""Snapshots: canonical bytes, restore to the same hash, identical behaviour afterwards,
and clear errors for anything that is not a canonical snapshot of a sound state."""

from __future__ import annotations

import json

import pytest

from tests.unit.validator_support import CALL, PUT, accepted, buy, deposit, sell
from validator.engine import Engine, snapshot
from validator.engine.errors import SnapshotError
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    Expire,
    Message,
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
    Underlying,
)
from validator.engine.results import RejectReason


def busy(engine: Engine) -> Engine:
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    accepted(engine.apply(buy("alice", 1, 50, 2)))
    accepted(engine.apply(buy("alice", 2, 45, 4, OrderKind.POST_ONLY)))
    accepted(engine.apply(sell("carol", 1, 70, 2, series=CALL)))
    accepted(engine.apply(buy("carol", 2, 40, 1)))
    return engine


def test_restored_engine_has_the_same_hash_and_sequence(engine: Engine) -> None:
    busy(engine)
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    assert restored.seq == engine.seq
    assert restored.audit() == []


def test_restored_engine_behaves_identically(engine: Engine) -> None:
    busy(engine)
    restored = Engine.restore(engine.snapshot())
    for msg in (
        buy("bob", 2, 45, 5),  # joins alice's level behind her
        sell("alice", 3, 40, 6),  # STP against alice's bid, then hits bob and carol
        Expire(Underlying("BTC"), Expiry(100)),
    ):
        assert restored.apply(msg) == engine.apply(msg)
        assert restored.state_hash() == engine.state_hash()


def test_state_hash_changes_with_the_state(engine: Engine) -> None:
    before = engine.state_hash()
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    assert engine.state_hash() != before


def test_snapshot_is_canonical_json(engine: Engine) -> None:
    data = busy(engine).snapshot()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("name", ["zo\u00eb", "a\x7fb", "\u2603", "plain"])
def test_snapshot_with_any_text_is_json_canonical_form(engine: Engine, name: str) -> None:
    """msgspec writes the snapshot where its bytes are json's; text beyond ASCII (which json
    escapes) and DEL (which json escapes and msgspec would not) go through json, as any other
    state does when msgspec's bytes would differ. The state must restore from either."""
    accepted(engine.apply(deposit(name, 10_000)))
    accepted(engine.apply(buy(name, 1, 45, 2)))
    data = busy(engine).snapshot()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert data.isascii() and b"\x7f" not in data
    assert Engine.restore(data).state_hash() == engine.state_hash()


@pytest.mark.parametrize("name", ["zo\u00eb", "a\x7fb"])
def test_positions_written_by_json_are_sorted_by_series(engine: Engine, name: str) -> None:
    """An account part json writes (text msgspec's bytes would differ on) holding positions in
    two series, taken in the order opposite to their ids': json must sort them, with the
    canonical separators."""
    accepted(engine.apply(deposit(name, 10_000)))
    for order_id, series, price in ((1, PUT, 50), (2, CALL, 70)):
        accepted(engine.apply(sell("bob", order_id, price, 1, series=series)))
        accepted(engine.apply(buy(name, order_id, price, 1, series=series)))
    data = engine.snapshot()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    (positions,) = (row[2] for row in json.loads(data)["accounts"] if row[0] == name)
    assert list(positions) == [CALL.series, PUT.series]


def test_every_kind_of_change_is_written_again(engine: Engine) -> None:
    """A snapshot after every input of a script that changes each part of the state the ways the
    engine can (so each part is kept from the snapshot before): it must be the one written from
    scratch every time."""
    script: list[Message] = [
        deposit("dave", 5_000),  # a new account
        deposit("alice", 100),  # an account's cash
        buy("alice", 1, 50, 2),  # rests: alice's used ids, the put's book
        sell("bob", 1, 50, 1),  # hits alice's bid: alice, the maker, changes too
        sell("bob", 2, 60, 2),
        buy("carol", 1, 60, 1),  # lifts half bob's ask: bob, the maker, changes too
        Cancel(AccountId("alice"), OrderId(1)),  # only the book changes (bob's ask still rests)
        sell("bob", 3, 70, 2),
        CancelReplace(AccountId("bob"), OrderId(3), OrderId(4), Price(75), Quantity(1)),
        Withdraw(AccountId("dave"), Cash(100)),
        SettlementPrice(Underlying("BTC"), Expiry(100), Price(900)),
        Expire(Underlying("BTC"), Expiry(100)),  # books cleared, positions settled into cash
    ]
    state = engine._state
    for msg in script:
        accepted(engine.apply(msg))
        assert snapshot.dump(state) == snapshot.dump_from_scratch(state), msg


def test_non_canonical_snapshot_is_rejected(engine: Engine) -> None:
    data = json.dumps(json.loads(busy(engine).snapshot()), indent=1).encode()
    with pytest.raises(SnapshotError, match="canonical"):
        Engine.restore(data)


def test_snapshot_of_an_unsound_state_is_rejected(engine: Engine) -> None:
    obj = json.loads(busy(engine).snapshot())
    obj["accounts"][1][1] = 10  # bob's cash below his locked collateral
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(SnapshotError, match="inconsistent snapshot: account bob: required"):
        Engine.restore(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"format": "something-else/9"}',
        b'{"format":"dc-redundancy/validator-snapshot/1"}',
    ],
    ids=["empty", "list", "wrong-format", "missing-fields"],
)
def test_garbage_is_rejected_as_snapshot_error(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        Engine.restore(data)


def test_used_order_ids_are_stored_as_maximal_ranges(engine: Engine) -> None:
    for order_id in (1, 2, 3, 7, 9, 10):
        accepted(engine.apply(buy("alice", order_id, 5, 1, OrderKind.IOC)))
    alice = json.loads(engine.snapshot())["accounts"][0]
    assert alice[0] == "alice"
    assert alice[3] == [[1, 3], [7, 7], [9, 10]]


def test_snapshot_claiming_more_used_ids_than_inputs_is_rejected(engine: Engine) -> None:
    obj = json.loads(engine.snapshot())
    obj["accounts"][0][3] = [[1, 10**12]]
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(SnapshotError, match="more used order ids than inputs"):
        Engine.restore(data)


def test_snapshot_with_touching_id_ranges_is_rejected(engine: Engine) -> None:
    for order_id in (1, 2, 3):
        accepted(engine.apply(buy("alice", order_id, 5, 1, OrderKind.IOC)))
    obj = json.loads(engine.snapshot())
    obj["accounts"][0][3] = [[1, 2], [3, 3]]
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(SnapshotError, match="used order id ranges overlap or touch"):
        Engine.restore(data)


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def test_an_unknown_format_is_named() -> None:
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(b'{"format":"something-else/9"}')
    assert str(caught.value) == "unknown snapshot format 'something-else/9'"


def test_a_snapshot_missing_a_field_is_malformed_naming_it() -> None:
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(b'{"format":"dc-redundancy/validator-snapshot/1"}')
    assert str(caught.value) == "malformed snapshot: KeyError('series')"


def test_used_ids_may_number_exactly_the_inputs_and_not_one_more(engine: Engine) -> None:
    obj = json.loads(engine.snapshot())
    obj["accounts"][0][3] = [[1, 2], [4, obj["seq"] + 1]]  # seq ids, with a gap of one
    restored = Engine.restore(canonical(obj))
    assert json.loads(restored.snapshot())["accounts"][0][3] == [[1, 2], [4, obj["seq"] + 1]]
    obj["accounts"][0][3] = [[1, 2], [4, obj["seq"] + 2]]
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(canonical(obj))
    assert str(caught.value) == "account 'alice': more used order ids than inputs"


def test_a_used_id_range_ending_before_it_starts_is_rejected(engine: Engine) -> None:
    obj = json.loads(engine.snapshot())
    obj["accounts"][0][3] = [[5, 4]]
    with pytest.raises(SnapshotError, match="'alice': more used order ids than inputs"):
        Engine.restore(canonical(obj))


def test_overlapping_id_ranges_are_rejected(engine: Engine) -> None:
    obj = json.loads(engine.snapshot())
    obj["accounts"][0][3] = [[1, 3], [3, 5]]  # the second starts inside the first
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(canonical(obj))
    assert str(caught.value) == "account 'alice': used order id ranges overlap or touch"


def test_an_order_resting_twice_is_rejected(engine: Engine) -> None:
    accepted(engine.apply(buy("alice", 1, 50, 1)))
    obj = json.loads(engine.snapshot())
    bids = obj["books"][0][1]
    bids.append(list(bids[0]))
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(canonical(obj))
    assert str(caught.value) == "order alice/1 rests twice"


def test_a_series_the_engine_would_not_list_is_rejected(engine: Engine) -> None:
    obj = json.loads(engine.snapshot())
    obj["series"][0][4] = 0  # strike 0
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(canonical(obj))
    assert str(caught.value) == f"series {obj['series'][0][0]!r}: {RejectReason.INVALID_SERIES}"


def test_an_expired_and_a_settled_expiry_are_restored_with_their_price(engine: Engine) -> None:
    busy(engine)
    accepted(engine.apply(Expire(Underlying("BTC"), Expiry(100))))
    accepted(engine.apply(SettlementPrice(Underlying("ETH"), Expiry(200), Price(250))))
    accepted(engine.apply(Expire(Underlying("ETH"), Expiry(200))))
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    expiries = json.loads(restored.snapshot())["expiries"]
    assert [e[2:] for e in expiries] == [["expired", None], ["settled", 250]]
    again = buy("bob", 9, 50, 1)
    assert restored.apply(again).reason is RejectReason.EXPIRED_SERIES
    assert restored.apply(again) == engine.apply(again)


def test_an_inconsistent_snapshot_lists_every_problem(engine: Engine) -> None:
    obj = json.loads(busy(engine).snapshot())
    obj["accounts"][1][1] = 10  # bob's cash below his locked collateral
    obj["accounts"][2][1] = -5  # carol's cash negative
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(canonical(obj))
    assert str(caught.value) == (
        "inconsistent snapshot: account bob: required 3000 not within cash 10; "
        "account carol: negative cash -5; account carol: required 1040 not within cash -5"
    )


def test_a_non_canonical_snapshot_is_named_so(engine: Engine) -> None:
    data = json.dumps(json.loads(busy(engine).snapshot()), indent=1).encode()
    with pytest.raises(SnapshotError) as caught:
        Engine.restore(data)
    assert str(caught.value) == "snapshot is not in canonical form"


def test_a_snapshot_msgspec_cannot_write_is_written_by_json_and_restores() -> None:
    """The fallback when msgspec raises (a mutant once wrote b"XXXX" there instead of b""): an
    account id with a lone surrogate (a message built directly, as test_codec allows) makes
    msgspec raise; the snapshot is then json's canonical bytes and restores to itself."""
    engine = Engine()
    accepted(engine.apply(Deposit(AccountId("a\ud800"), Cash(5))))
    accepted(engine.apply(deposit("b", 7)))
    snap = engine.snapshot()
    assert snap == json.dumps(json.loads(snap), sort_keys=True, separators=(",", ":")).encode()
    assert b'"a\\ud800",5,' in snap
    assert Engine.restore(snap).snapshot() == snap


def test_only_the_parts_that_changed_are_written_again(engine: Engine) -> None:
    """Between two snapshots, an account or a book the engine did not change keeps the bytes it
    was last written as; one it changed is written again. A space planted in each kept part
    (still the same JSON, no longer canonical) shows which were written again."""
    busy(engine)
    state = engine._state
    engine.snapshot()
    alice, bob = state.accounts_by_id[AccountId("alice")], state.accounts_by_id[AccountId("bob")]
    put, call = state.series_by_id[PUT.series], state.series_by_id[CALL.series]
    for record in (alice, bob, put, call):
        record.snap = record.snap.replace(b"[", b"[ ", 1)
    accepted(engine.apply(buy("alice", 3, 40, 1)))  # rests: alice's used ids and the put's book
    kept = engine.snapshot()
    assert not alice.snap.startswith(b"[ ") and not put.snap.startswith(b"[ ")
    assert bob.snap.startswith(b"[ ") and call.snap.startswith(b"[ ")
    assert bob.snap in kept and call.snap in kept
    assert json.loads(kept) == json.loads(snapshot.dump_from_scratch(state))
