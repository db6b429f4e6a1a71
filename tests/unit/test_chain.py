"""Hash chain: one link per chunk of inputs, committing to every line and every result."""

from __future__ import annotations

from hashlib import sha256
from itertools import pairwise

import pytest

from devnet.loggen import generate
from tests.unit.validator_support import buy, funded_engine, sell
from validator.engine import Engine
from validator.engine.codec import encode_message, encode_result
from validator.engine.hashchain import GENESIS, HashChain
from validator.engine.messages import Message, NewOrder
from validator.engine.results import Result


def test_chain_starts_at_genesis_and_links_a_chunk_of_lines_and_results() -> None:
    engine, chain = funded_engine(), HashChain()
    assert chain.head == GENESIS == sha256(b"dc-redundancy/validator/chain/v2").digest()
    msgs = [buy("alice", 1, 50, 1), sell("bob", 1, 50, 1)]
    lines = [encode_message(msg) for msg in msgs]
    results = [engine.apply(msg) for msg in msgs]
    head = chain.extend(lines, results)
    records = b"".join(
        line + b"\n" + encode_result(r) + b"\n" for line, r in zip(lines, results, strict=True)
    )
    expected = sha256(GENESIS + (2).to_bytes(8, "big") + records)
    assert head == chain.head == expected.digest()
    assert chain.seq == 2


def test_link_is_a_chunk_of_one() -> None:
    engine = funded_engine()
    msg = buy("alice", 1, 50, 1)
    result = engine.apply(msg)
    one, chunk = HashChain(), HashChain()
    assert one.link(msg, result) == chunk.extend([encode_message(msg)], [result])


def test_same_inputs_give_the_same_chain_and_different_results_a_different_one() -> None:
    heads = []
    for second in (sell("bob", 1, 50, 1), sell("bob", 1, 55, 1), sell("bob", 1, 50, 1)):
        engine, chain = funded_engine(), HashChain()
        for msg in (buy("alice", 1, 50, 1), second):
            chain.link(msg, engine.apply(msg))
        heads.append(chain.head)
    assert heads[0] == heads[2] != heads[1]


def _chunked_heads(log: list[Message], size: int) -> list[bytes]:
    engine, chain = Engine(), HashChain()
    heads = []
    for start in range(0, len(log), size):
        msgs = log[start : start + size]
        results = [engine.apply(msg) for msg in msgs]
        heads.append(chain.extend([encode_message(msg) for msg in msgs], results))
    return heads


def _flipped(msg: Message) -> Message:
    """The same order one lot bigger: a different input that the engine may well accept."""
    assert isinstance(msg, NewOrder)
    return NewOrder(msg.account, msg.order_id, msg.series, msg.side, msg.price, msg.qty + 1)


def test_flipping_one_input_in_one_chunk_changes_that_head_and_every_later_one() -> None:
    log = generate(4000, seed=7)
    chunk = 100
    orders = [i for i, msg in enumerate(log) if isinstance(msg, NewOrder)]
    for where in (orders[len(orders) // 2], orders[-1]):
        flipped = [*log[:where], _flipped(log[where]), *log[where + 1 :]]
        base, other = _chunked_heads(log, chunk), _chunked_heads(flipped, chunk)
        k = where // chunk
        assert base[:k] == other[:k]
        assert all(a != b for a, b in zip(base[k:], other[k:], strict=True))


def test_a_different_result_alone_changes_the_head() -> None:
    msg = buy("alice", 1, 50, 1)
    line = encode_message(msg)
    accepted, rejected = HashChain(), HashChain()
    accepted.extend([line], [Result()])
    rejected.extend([line], [funded_engine().apply(buy("nobody", 1, 50, 1))])
    assert accepted.head != rejected.head


def test_moving_an_input_to_the_next_chunk_changes_the_head() -> None:
    """The chunk's last sequence number is linked: [a][b c] and [a b][c] differ."""
    engine = funded_engine()
    msgs = [buy("alice", i, 50, 1) for i in range(1, 4)]
    lines = [encode_message(msg) for msg in msgs]
    results = [engine.apply(msg) for msg in msgs]
    first, second = HashChain(), HashChain()
    first.extend(lines[:1], results[:1])
    first.extend(lines[1:], results[1:])
    second.extend(lines[:2], results[:2])
    second.extend(lines[2:], results[2:])
    assert first.seq == second.seq == 3
    assert first.head != second.head


def test_a_log_error_names_the_file_and_the_line() -> None:
    from validator.engine.errors import LogError

    with_line = LogError("inputs.log", 7, "bad line")
    assert str(with_line) == "inputs.log:7: bad line"
    assert (with_line.path, with_line.line, with_line.reason) == ("inputs.log", 7, "bad line")
    assert str(LogError("inputs.log", None, "unreadable")) == "inputs.log: unreadable"
    assert isinstance(with_line, ValueError)


def test_a_sequence_error_names_the_expected_and_the_given_number() -> None:
    from validator.engine.errors import SequenceError

    error = SequenceError(8, 10)
    assert str(error) == "expected input at sequence 8, got 10"


def test_an_empty_chunk_links_the_sequence_number_and_no_records() -> None:
    chain = HashChain(seq=5)
    head = chain.extend([], [])
    assert head == sha256(GENESIS + (5).to_bytes(8, "big")).digest()
    assert chain.seq == 5


def test_a_chunk_with_more_lines_than_results_is_refused_naming_both_counts() -> None:
    chain = HashChain()
    with pytest.raises(ValueError) as caught:
        chain.extend([b"{}"], [])
    assert str(caught.value) == "1 lines but 0 results"
    assert (chain.seq, chain.head) == (0, GENESIS)


def test_a_message_error_keeps_its_reason_and_names_its_field_only_when_it_has_one() -> None:
    from validator.engine.errors import MessageError

    with_field = MessageError("missing", field="amount")
    assert (str(with_field), with_field.reason, with_field.field) == (
        "field 'amount': missing",
        "missing",
        "amount",
    )
    without = MessageError("must be a JSON object")
    assert (str(without), without.reason, without.field) == (
        "must be a JSON object",
        "must be a JSON object",
        None,
    )


def test_records_in_parts_link_as_the_whole_chunk() -> None:
    """``extend_records`` over any cut of a chunk's records is ``extend`` over the chunk."""
    from validator.engine.hashchain import records

    engine = Engine()
    msgs = generate(300, 5)
    lines = [encode_message(msg) for msg in msgs]
    results = engine.apply_many(msgs)
    whole = HashChain(seq=7).extend(lines, results)
    for cuts in ([], [1], [100, 101, 299], [150, 150, 300]):
        bounds = [0, *cuts, len(lines)]
        parts = [records(lines[a:b], results[a:b]) for a, b in pairwise(bounds)]
        chain = HashChain(seq=7)
        assert chain.extend_records(len(lines), parts) == whole
        assert chain.seq == 307
