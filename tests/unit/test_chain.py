"""Per-input hash chain."""

from __future__ import annotations

from hashlib import sha256

from tests.unit.validator_support import buy, funded_engine, sell
from validator.engine.codec import encode_message, encode_result
from validator.engine.hashchain import GENESIS, HashChain


def test_chain_starts_at_genesis_and_links_input_and_result() -> None:
    engine, chain = funded_engine(), HashChain()
    assert chain.head == GENESIS == sha256(b"dc-redundancy/validator/chain/v1").digest()
    msg = buy("alice", 1, 50, 1)
    result = engine.apply(msg)
    head = chain.link(msg, result)
    expected = sha256(
        GENESIS + (1).to_bytes(8, "big") + encode_message(msg) + b"\n" + encode_result(result)
    )
    assert head == chain.head == expected.digest()
    assert chain.seq == 1


def test_same_inputs_give_the_same_chain_and_different_results_a_different_one() -> None:
    heads = []
    for second in (sell("bob", 1, 50, 1), sell("bob", 1, 55, 1)):
        engine, chain = funded_engine(), HashChain()
        for msg in (buy("alice", 1, 50, 1), second):
            chain.link(msg, engine.apply(msg))
        heads.append(chain.head)
    engine, chain = funded_engine(), HashChain()
    for msg in (buy("alice", 1, 50, 1), sell("bob", 1, 50, 1)):
        chain.link(msg, engine.apply(msg))
    assert chain.head == heads[0] != heads[1]
