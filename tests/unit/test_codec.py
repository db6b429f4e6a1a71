"""Canonical line format: round trips, canonical output, and clear errors for malformed lines."""

from __future__ import annotations

import json

import pytest

from tests.unit.validator_support import CALL, buy, deposit
from validator.codec import decode_message, encode_message, encode_result
from validator.domain import AccountId, Expiry, OrderId, OrderKind, Price, Quantity, Underlying
from validator.errors import MessageError
from validator.messages import Cancel, CancelReplace, Expire, Message, SettlementPrice, Withdraw
from validator.results import REJECTED, CancelledOrder, Fill, RejectReason, Result

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
