"""Canonical line format: round trips, canonical output, and clear errors for malformed lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.validator_support import CALL, buy, deposit
from validator.engine.codec import (
    _BY_TAG,
    decode_message,
    decode_object,
    encode_message,
    encode_result,
)
from validator.engine.errors import MessageError
from validator.engine.messages import (
    Cancel,
    CancelReplace,
    Expire,
    Message,
    SettlementPrice,
    Withdraw,
)
from validator.engine.primitives import (
    AccountId,
    Expiry,
    OrderId,
    OrderKind,
    Price,
    Quantity,
    Underlying,
)
from validator.engine.results import REJECTED, CancelledOrder, Fill, RejectReason, Result

EXAMPLES: list[Message] = [
    CALL,
    deposit("alice", 10),
    Withdraw(AccountId("alice"), 5),
    buy("alice", 7, 120, 3, OrderKind.POST_ONLY),
    Cancel(AccountId("alice"), OrderId(7)),
    CancelReplace(AccountId("alice"), OrderId(7), OrderId(8), Price(125), Quantity(2)),
    SettlementPrice(Underlying("BTC"), Expiry(100), Price(900)),
    Expire(Underlying("BTC"), Expiry(100)),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: Message) -> None:
    line = encode_message(msg)
    assert decode_message(line) == msg
    assert decode_message(line.decode()) == msg


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_encoding_is_canonical_json(msg: Message) -> None:
    line = encode_message(msg)
    obj = json.loads(line)
    assert line == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def test_key_order_and_whitespace_do_not_matter_on_input() -> None:
    line = '{ "type": "deposit",  "amount": 10, "account": "alice" }'
    assert (
        encode_message(decode_message(line)) == b'{"account":"alice","amount":10,"type":"deposit"}'
    )


def test_fields_with_defaults_may_be_omitted() -> None:
    line = '{"type":"order","account":"a","order_id":1,"series":"S","side":"buy","price":5,"qty":1}'
    assert decode_message(line) == decode_message(line[:-1] + ',"kind":"gtc"}')


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "must be a JSON object"),
        ('{"type": "bogus"}', "type", "must be one of"),
        ('{"account": "a", "amount": 1}', "type", "must be one of"),
        ('{"type": "deposit", "account": "a"}', "amount", "missing"),
        ('{"type": "deposit", "account": "a", "amount": 1, "memo": 2}', "memo", "unknown field"),
        ('{"type": "deposit", "account": "a", "amount": "1"}', "amount", "must be an integer"),
        ('{"type": "deposit", "account": "a", "amount": 1.0}', "amount", "must be an integer"),
        ('{"type": "deposit", "account": "a", "amount": true}', "amount", "must be an integer"),
        ('{"type": "deposit", "account": "a", "amount": 9223372036854775808}', "amount", "64-bit"),
        ('{"type": "deposit", "account": 5, "amount": 1}', "account", "must be a string"),
        ('{"type": "deposit", "account": "", "amount": 1}', "account", "1-64 characters"),
        ('{"type": "deposit", "account": "a\\nb", "amount": 1}', "account", "control"),
        ('{"type": "cancel", "account": "a", "order_id": 1, "order_id": 2}', None, "duplicate key"),
        (
            '{"type":"order","account":"a","order_id":1,"series":"S","side":"up","price":5,"qty":1}',
            "side",
            "buy, sell",
        ),
    ],
)
def test_malformed_line_raises_message_error_naming_the_field(
    line: str, field: str | None, reason: str
) -> None:
    with pytest.raises(MessageError) as caught:
        decode_message(line)
    assert caught.value.field == field
    assert reason in str(caught.value)


def test_message_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_message("{}")


def test_results_encode_canonically() -> None:
    result = Result(
        None,
        fills=(Fill(AccountId("bob"), 1, 50, 2),),
        cancelled=(CancelledOrder(AccountId("alice"), 3, 1),),
    )
    assert encode_result(result) == (
        b'{"cancelled":[["alice",3,1]],"fills":[["bob",1,50,2]],"payouts":[],"reason":null}'
    )
    assert encode_result(REJECTED[RejectReason.BAD_TICK]) == (
        b'{"cancelled":[],"fills":[],"payouts":[],"reason":"bad_tick"}'
    )


_EDGES = [
    "", "a" * 64, "a" * 65, "tab\there", "é", True, False, None, 1.0, [], {},
    (1 << 63) - 1, 1 << 63, -(1 << 63) + 1, -(1 << 63), 0, -1,
    "buy", "sell", "gtc", "ioc", "post_only", "call", "put", "BUY",
]  # fmt: skip
_VALUES = st.one_of(st.sampled_from(_EDGES), st.integers(), st.text(max_size=70), st.booleans())


@given(msg=st.sampled_from(EXAMPLES), data=st.data())
@settings(max_examples=1000, deadline=None)
def test_compiled_decoder_accepts_and_refuses_exactly_like_the_generic_one(
    msg: Message, data: st.DataObject
) -> None:
    obj = json.loads(encode_message(msg))
    names = sorted(set(obj) - {"type"})
    for key in data.draw(st.sets(st.sampled_from(names), max_size=2)):
        del obj[key]
    changed = data.draw(st.dictionaries(st.sampled_from([*names, "extra"]), _VALUES, max_size=3))
    obj.update(changed)
    generic = _BY_TAG[obj["type"]].decode
    try:
        expected: object = generic(obj)
    except MessageError as exc:
        expected = ("error", str(exc))
    try:
        got: object = decode_object(obj)
    except MessageError as exc:
        got = ("error", str(exc))
    assert got == expected
