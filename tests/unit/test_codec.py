"""Canonical line format: round trips, canonical output, and clear errors for malformed lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.validator_support import CALL, buy, deposit
from validator.engine.codec import (
    _BY_TAG,
    _PLAIN,
    MAX_NESTING,
    decode_lines,
    decode_message,
    decode_object,
    encode_message,
    encode_messages,
    encode_reference,
    encode_result,
    loads_strict,
    nesting,
)
from validator.engine.errors import MessageError
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
    SeriesId,
    Underlying,
)
from validator.engine.results import (
    REJECTED,
    CancelledOrder,
    Fill,
    Payout,
    RejectReason,
    Result,
)

EXAMPLES: list[Message] = [
    CALL,
    deposit("alice", 10),
    Withdraw(AccountId("alice"), 5),
    Withdraw(AccountId("alice"), 5, OrderId(12)),
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
        ('{"type": ["order"], "account": "a"}', "type", "must be one of"),  # not hashable
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


_ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\/ azAZ09:{}[],\x7f\t\n\u00e9\u2028\U0001f600'),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=64,
)


@given(msg=st.sampled_from(EXAMPLES), data=st.data())
@settings(max_examples=2000, deadline=None)
def test_the_fast_encoder_writes_the_reference_line_for_every_valid_message(
    msg: Message, data: st.DataObject
) -> None:
    """msgspec's sorted encoding is kept only where it is byte for byte the per-class
    template's: every field of a valid message redrawn (any printable text, beyond ASCII
    too, quotes and backslashes; integers to the 64-bit bounds)."""
    obj = json.loads(encode_reference(msg))
    for key, value in obj.items():
        if key == "type":
            continue
        if isinstance(value, int):
            obj[key] = data.draw(st.integers(-(1 << 63) + 1, (1 << 63) - 1))
        elif data.draw(st.booleans()):
            obj[key] = data.draw(_ANY_TEXT)
    try:
        valid = decode_object(obj)
    except MessageError:  # an enum field given text, a non-printable character: not a message
        return
    line = encode_message(valid)
    assert line == encode_reference(valid)
    assert line.isascii() and decode_message(line) == valid


@pytest.mark.parametrize("text", [chr(c) for c in range(128)] + ["\ud800", "\u00e9", "\U0001f600"])
def test_the_fast_encoder_falls_back_wherever_it_would_differ(text: str) -> None:
    """Messages built directly (not decoded) may hold what no line may: control characters,
    DEL, lone surrogates. The line is still the reference's, whatever the text."""
    msg = Deposit(account=AccountId("a" + text), amount=Cash(10))
    assert encode_message(msg) == encode_reference(msg)


@given(texts=st.lists(st.one_of(st.just("a"), _ANY_TEXT), min_size=1, max_size=5))
@settings(max_examples=500, deadline=None)
def test_encoding_many_messages_at_once_writes_each_ones_own_line(texts: list[str]) -> None:
    """``encode_messages`` checks all the lines at once; one message whose fast line differs
    from the reference's (non-ASCII, DEL, an escape) sends the whole list line by line, and
    every line is still ``encode_message``'s."""
    msgs: list[Message] = [Deposit(account=AccountId(t), amount=Cash(10)) for t in texts]
    msgs += EXAMPLES
    assert encode_messages(msgs) == [encode_message(msg) for msg in msgs]
    assert encode_messages(tuple(msgs)) == [encode_message(msg) for msg in msgs]
    assert encode_messages([]) == []
    surrogate = [*msgs, Deposit(account=AccountId("\ud800"), amount=Cash(1))]  # msgspec raises
    assert encode_messages(surrogate) == [encode_message(msg) for msg in surrogate]


_INT64 = st.integers(-(1 << 63) + 1, (1 << 63) - 1)


@given(
    reason=st.sampled_from([None, *RejectReason]),
    fills=st.lists(st.builds(Fill, _ANY_TEXT, _INT64, _INT64, _INT64), max_size=3),
    cancelled=st.lists(st.builds(CancelledOrder, _ANY_TEXT, _INT64, _INT64), max_size=3),
    payouts=st.lists(st.builds(Payout, _ANY_TEXT, _ANY_TEXT, _INT64, _INT64), max_size=3),
)
@settings(max_examples=1000, deadline=None)
def test_a_result_line_is_json_with_sorted_keys_whatever_it_holds(
    reason: RejectReason | None,
    fills: list[Fill],
    cancelled: list[CancelledOrder],
    payouts: list[Payout],
) -> None:
    """The hash chain's result lines, by msgspec where they are the same bytes and by ``json``
    elsewhere: always ``json``'s canonical form (keys sorted, no whitespace, ASCII escapes)."""
    result = Result(reason, tuple(fills), tuple(cancelled), tuple(payouts))
    expected = {
        "cancelled": [list(order) for order in cancelled],
        "fills": [list(fill) for fill in fills],
        "payouts": [list(payout) for payout in payouts],
        "reason": None if reason is None else reason.value,
    }
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert encode_result(result) == canonical


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


def _reference(line: bytes) -> object:
    """The reference's outcome: the message, or ("error", the error's text)."""
    try:
        return _reference_decode(line)
    except MessageError as exc:
        return ("error", str(exc))


def _reference_decode(line: bytes) -> Message:
    """The reference decoder: ``json`` with duplicate keys refused, then the generic per-field
    checks (not the exec-compiled ones, not msgspec)."""
    obj = loads_strict(line)
    if type(obj) is not dict:
        raise MessageError("must be a JSON object")
    tag = obj.get("type")
    if not isinstance(tag, str) or tag not in _BY_TAG:
        raise MessageError(f"must be one of {', '.join(sorted(_BY_TAG))}", field="type")
    return _BY_TAG[tag].decode(obj)


_TEXTS = st.one_of(
    st.sampled_from(["a", "a b", "a\\b", 'a"b', "a\x7fb", "a\tb", "é", "\u200b", "x" * 64]),
    st.text(max_size=8),
)
_LINE_VALUES = st.one_of(_VALUES, _TEXTS)


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """A JSON object line near a valid message: keys dropped, changed, duplicated, reordered;
    whitespace and escapes in some; so that both decoders see every kind of near miss."""
    msg = draw(st.sampled_from(EXAMPLES))
    pairs = list(json.loads(encode_message(msg)).items())
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["drop", "change", "duplicate", "swap"]))
        if not pairs:
            break
        i = draw(st.integers(0, len(pairs) - 1))
        key, _ = pairs[i]
        if action == "drop":
            del pairs[i]
        elif action == "change":
            pairs[i] = (draw(st.sampled_from([key, key, "extra"])), draw(_LINE_VALUES))
        elif action == "duplicate":
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(_LINE_VALUES)))
        else:
            j = draw(st.integers(0, len(pairs) - 1))
            pairs[i], pairs[j] = pairs[j], pairs[i]
    ascii_only = draw(st.booleans())
    colon, comma = draw(st.sampled_from([(":", ","), (": ", ", "), (" :", ",")]))
    body = comma.join(
        json.dumps(k, ensure_ascii=ascii_only) + colon + json.dumps(v, ensure_ascii=ascii_only)
        for k, v in pairs
    )
    return ("{" + body + "}").encode("utf-8", "surrogatepass")


@given(line=_lines())
@settings(max_examples=2000, deadline=None)
def test_fast_line_decoder_accepts_and_refuses_exactly_like_the_reference(line: bytes) -> None:
    try:
        got: object = decode_message(line)
    except MessageError as exc:
        got = ("error", str(exc))
    assert got == _reference(line)


@given(lines=st.lists(_lines(), min_size=1, max_size=6))
@settings(max_examples=500, deadline=None)
def test_chunk_decoder_takes_only_chunks_whose_every_line_the_reference_accepts_alike(
    lines: list[bytes],
) -> None:
    expected = [_reference(line) for line in lines]
    decoded = decode_lines(lines)
    if decoded is not None:
        assert decoded == expected
    canonical = [encode_message(e) if isinstance(e, Message) else None for e in expected]
    plain = not b"".join(lines).translate(None, _PLAIN)
    if canonical == lines and plain:  # what gateways write takes the fast path, unless it
        assert decoded == expected  # holds an escape (``{"account":"\\""...}``): by design not


def test_a_canonical_line_with_an_escape_goes_to_the_reference_and_decodes_alike() -> None:
    """Found by Hypothesis (then the property above wrongly required the fast path for it)."""
    line = encode_message(Deposit(account=AccountId('"'), amount=10))
    assert line == b'{"account":"\\"","amount":10,"type":"deposit"}'
    assert decode_lines([line]) is None
    assert decode_message(line) == Deposit(account=AccountId('"'), amount=10)


def test_chunk_decoder_sees_a_key_missing_from_one_line_and_doubled_in_another() -> None:
    no_kind = (
        b'{"account":"a","order_id":1,"price":5,"qty":1,"series":"S","side":"buy","type":"order"}'
    )
    two_kinds = (
        b'{"account":"a","kind":"gtc","kind":"ioc","order_id":2,"price":5,"qty":1,'
        b'"series":"S","side":"buy","type":"order"}'
    )
    assert decode_lines([no_kind, two_kinds]) is None
    assert decode_message(no_kind) == decode_message(no_kind.decode())
    with pytest.raises(MessageError, match="duplicate key"):
        decode_message(two_kinds)


def test_a_transfer_without_a_request_id_is_the_line_it_was_before_the_field() -> None:
    """request_id 0 (none) is left out of the canonical line: a gateway that knows the field
    writes what one that predates it wrote, so a node not yet upgraded reads it alike (a rolling
    upgrade); with an id it is written."""
    plain = Withdraw(AccountId("a"), 5)
    assert (
        encode_message(plain)
        == encode_reference(plain)
        == (b'{"account":"a","amount":5,"type":"withdraw"}')
    )
    with_id = Withdraw(AccountId("a"), 5, OrderId(3))
    assert (
        encode_message(with_id)
        == encode_reference(with_id)
        == (b'{"account":"a","amount":5,"request_id":3,"type":"withdraw"}')
    )
    lines = [encode_message(m) for m in (plain, with_id, deposit("b", 1))]
    assert decode_lines(lines) == [plain, with_id, deposit("b", 1)]  # the fast path takes both
    assert [decode_message(line) for line in lines] == [plain, with_id, deposit("b", 1)]


def test_a_transfer_line_with_a_doubled_key_in_place_of_its_id_is_refused() -> None:
    """The fast path counts keys: a transfer line with as many keys as one holding an id, but
    no id, holds a key twice, and goes to the reference, which refuses it; so does an id given
    twice."""
    doubled = b'{"account":"a","amount":5,"amount":6,"type":"deposit"}'
    two_ids = b'{"account":"a","amount":5,"request_id":3,"request_id":4,"type":"deposit"}'
    for line in (doubled, two_ids):
        assert decode_lines([line]) is None
        assert decode_lines([encode_message(deposit("b", 1)), line]) is None
        with pytest.raises(MessageError, match="duplicate key"):
            decode_message(line)


def test_canonical_lines_take_the_fast_path() -> None:
    lines = [encode_message(msg) for msg in EXAMPLES]
    assert decode_lines(lines) == EXAMPLES


def test_plain_lines_that_are_not_canonical_still_take_the_fast_path_by_their_key_counts() -> None:
    """The canonical check settles a gateway's chunk at once; a plain chunk that fails it (keys
    in another order) is judged by the key counts as before: taken when every key is there
    once, left to the reference for an order without its optional ``kind`` or a doubled key."""
    canonical = encode_message(EXAMPLES[0])
    reordered = b'{"type":"deposit","amount":5,"account":"a"}'
    assert encode_message(decode_message(reordered)) != reordered
    lines = [canonical, reordered]
    assert decode_lines(lines) == [EXAMPLES[0], decode_message(reordered)]
    assert decode_lines(tuple(lines)) == decode_lines(lines)  # any sequence, not only a list
    no_kind = (
        b'{"account":"a","order_id":1,"price":5,"qty":1,"series":"S","side":"buy","type":"order"}'
    )
    doubled = b'{"type":"deposit","amount":5,"amount":6,"account":"a"}'
    assert decode_lines([canonical, no_kind]) is None
    assert decode_lines([canonical, doubled]) is None


_DEPOSIT = '{"type": "deposit", "account": "a", "amount": 1}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "cancel", "account": "a", "order_id": 1, "order_id": 2}',
         "duplicate key in JSON object"),
        ('{"type": "deposit", "account": "a"}', "field 'amount': missing"),
        (_DEPOSIT[:-1] + ', "memo": 2}', "field 'memo': unknown field"),
        (_DEPOSIT.replace("1}", '"1"}'), "field 'amount': must be an integer"),
        ('{"type": "deposit", "account": "a", "amount": -9223372036854775808}',
         "field 'amount': must fit a signed 64-bit integer"),
        ('{"type": "deposit", "account": 5, "amount": 1}', "field 'account': must be a string"),
        ('{"type": "deposit", "account": "", "amount": 1}',
         "field 'account': must be 1-64 characters"),
        ('{"type": "deposit", "account": "a\\u0007", "amount": 1}',
         "field 'account': must be printable (no control characters)"),
        # a control character in a string of 1 or of 64 characters: the length is fine
        ('{"type": "deposit", "account": "\\u0007", "amount": 1}',
         "field 'account': must be printable (no control characters)"),
        ('{"type": "deposit", "account": "' + "a" * 63 + '\\u0007", "amount": 1}',
         "field 'account': must be printable (no control characters)"),
        # an enum field given a value that is not a string (a list cannot even be looked up)
        ('{"type": "order", "account": "a", "order_id": 1, "series": "S", "side": [], '
         '"price": 5, "qty": 1}', "field 'side': must be one of buy, sell"),
        ('{"type": "order", "account": "a", "order_id": 1, "series": "S", "side": 1, '
         '"price": 5, "qty": 1}', "field 'side': must be one of buy, sell"),
        # a string of 1 and of 64 characters is fine: the error is the next field's
        ('{"type": "deposit", "account": "a", "amount": 1.5}',
         "field 'amount': must be an integer"),
        ('{"type": "deposit", "account": "' + "a" * 64 + '", "amount": 1.5}',
         "field 'amount': must be an integer"),
    ],
)  # fmt: skip
def test_each_refusal_has_its_exact_message(line: str, message: str) -> None:
    for form in (line, line.encode()):
        with pytest.raises(MessageError) as caught:
            decode_message(form)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    "line",
    [
        # an order with no "kind" but another key twice has its class's number of keys
        b'{"account":"a","order_id":1,"order_id":2,"price":5,"qty":1,"series":"S",'
        b'"side":"buy","type":"order"}',
        # the same for a listing with no "cap"
        b'{"expiry":1,"lot":1,"lot":2,"multiplier":1,"option_type":"put","series":"S",'
        b'"strike":5,"tick":1,"type":"list_series","underlying":"U"}',
    ],
)
def test_a_line_missing_its_optional_key_with_another_doubled_is_a_duplicate(line: bytes) -> None:
    with pytest.raises(MessageError) as caught:
        decode_message(line)
    assert str(caught.value) == "duplicate key in JSON object"


FILL = Fill(AccountId("bob"), 1, 50, 2)
CANCELLED = CancelledOrder(AccountId("alice"), 3, 1)
PAYOUT = Payout(SeriesId("S"), AccountId("alice"), 2, 100)


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (Result(None, fills=(FILL,)),
         b'{"cancelled":[],"fills":[["bob",1,50,2]],"payouts":[],"reason":null}'),
        (Result(None, cancelled=(CANCELLED,)),
         b'{"cancelled":[["alice",3,1]],"fills":[],"payouts":[],"reason":null}'),
        (Result(None, payouts=(PAYOUT,)),
         b'{"cancelled":[],"fills":[],"payouts":[["S","alice",2,100]],"reason":null}'),
        (Result(RejectReason.BAD_TICK, fills=(FILL,)),
         b'{"cancelled":[],"fills":[["bob",1,50,2]],"payouts":[],"reason":"bad_tick"}'),
    ],
)  # fmt: skip
def test_a_result_with_any_one_list_is_written_in_full(result: Result, line: bytes) -> None:
    assert encode_result(result) == line


def test_a_line_nested_past_the_limit_is_refused_before_the_parser_recurses() -> None:
    assert nesting(b'{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1  # text, not nesting
    assert nesting(b"[" * 100_000) == MAX_NESTING + 1
    for line in (b"[" * 100_000, b'{"a":' * (MAX_NESTING + 1) + b"1" + b"}" * (MAX_NESTING + 1)):
        with pytest.raises(MessageError, match=f"nested deeper than {MAX_NESTING} levels"):
            decode_message(line)
    assert decode_lines([b"[" * 100_000]) is None  # the chunk goes to the line-by-line path
    # plain text with the tag last: msgspec skips the deep value looking for the tag, and
    # raised RecursionError (found by review: every node's follower died on such a chunk)
    deep = b'{"account":' + b"[" * 5_000 + b"]" * 5_000 + b',"amount":1,"type":"deposit"}'
    assert not deep.translate(None, _PLAIN)
    with pytest.raises(MessageError, match=f"nested deeper than {MAX_NESTING} levels"):
        decode_message(deep)
    assert decode_lines([deep]) is None
    assert decode_lines([deep, encode_message(EXAMPLES[0])]) is None
    with pytest.raises(MessageError, match="nested too deeply"):  # a gateway's request body
        loads_strict(b"[" * 100_000)


@pytest.mark.parametrize(
    "first", ["import web3; import redundancy", "import redundancy; import web3"]
)
def test_a_deeply_nested_line_is_an_error_in_a_node_process_not_a_crash(first: str) -> None:
    """Found by review: py_ecc (imported by web3) raises the recursion limit to 100,000, and
    then 100 KB of "[" in a log line, a root record, a signature entry or a peer's snapshot
    header killed the node with SIGSEGV (the C parser overflowed its stack), every node alike
    and again at each restart. ``redundancy`` puts the limit back whichever comes first."""
    script = (
        f"{first}; import sys; import validator.node.cli, validator.node.settler\n"
        "from validator.engine.codec import decode_message, loads_strict\n"
        "from validator.engine.errors import MessageError\n"
        "assert sys.getrecursionlimit() < 100_000, sys.getrecursionlimit()\n"
        "import json\n"
        "try:\n"
        "    json.loads(b'[' * 100_000)\n"
        "except RecursionError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.strip() == "refused"


@pytest.mark.parametrize(
    "lines",
    [
        # a request_id key on the line before its object (it used to set both lines' counts)
        [
            b'{"account":"a","amount":1,"type":"deposit"},{"request_id":5',
            b'"account":"b","amount":1,"type":"deposit"}',
        ],
        [
            b'{"account":"b","amount":3,"type":"withdraw"',
            b'"request_id":5},{"account":"b","amount":3,"type":"withdraw"}',
        ],
        # a comma inside a string value used as the line break
        [
            b'{"amount":1,"type":"deposit","account":"x',
            b'y"},{"account":"b","amount":2,"type":"deposit"}',
        ],
        # an object run on into the next line, its kind doubled there, the next one without:
        # every line's key count and the chunk's count of kinds as for two whole orders
        [
            b'{"account":"alice","kind":"gtc","order_id":1,"price":100,"qty":1,"series":"S",'
            b'"side":"buy","type":"order"',
            b'"kind":"ioc"},{"account":"bob","order_id":2,"price":100,"qty":1,"series":"S",'
            b'"side":"sell","type":"order"}',
        ],
    ],
)
def test_the_chunk_decoder_refuses_lines_that_are_not_each_one_message(lines: list[bytes]) -> None:
    """Found by review: the chunk decoder parsed the lines joined by commas, so lines that are
    not whole objects (each refused by the reference) could join into valid elements; the last
    case passed every key count, so whether the chunk decoder took it depended on which lines
    were decoded together (found when a node began decoding long chunks in slices)."""
    for line in lines:
        with pytest.raises(MessageError):
            decode_message(line)
    assert decode_lines(lines) is None
    assert decode_lines(lines, spaced=True) is None


def test_a_transfer_line_without_its_id_and_with_two_keys_doubled_is_a_duplicate() -> None:
    """Kills codec.x_decode_message__mutmut_20 (a line without its omitted key expected to hold
    _KEYS + 1 keys instead of _KEYS - 1): msgspec takes doubled keys, so the fast path would
    return a message for a line the reference refuses. (The existing example doubles one key,
    which makes _KEYS keys; two doubled keys make _KEYS + 1.)"""
    for line in (
        b'{"account":"a","account":"a","amount":5,"amount":5,"type":"deposit"}',
        b'{"account":"a","account":"a","amount":5,"amount":5,"type":"withdraw"}',
    ):
        with pytest.raises(MessageError) as caught:
            decode_message(line)
        assert str(caught.value) == "duplicate key in JSON object"


def test_a_line_nested_exactly_to_the_limit_goes_to_the_parser() -> None:
    """Kills codec.x_decode_message__mutmut_29 (nesting(line) >= MAX_NESTING): a line nested
    exactly MAX_NESTING levels is not refused as too deep; the parser gives its own answer."""
    inner = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)
    line = '{"type":"deposit","account":"a","amount":' + inner + "}"
    assert nesting(line) == MAX_NESTING
    for form in (line, line.encode()):
        with pytest.raises(MessageError) as caught:
            decode_message(form)
        assert str(caught.value) == "field 'amount': must be an integer"


def test_a_text_line_holding_a_lone_surrogate_is_refused_as_unprintable() -> None:
    """Kills codec.x_nesting__mutmut_7 (encode without "surrogatepass": UnicodeEncodeError),
    _10 and _11 (an unknown error handler: LookupError): a str line may hold a lone surrogate,
    and the depth count must not raise on it before the decoder refuses it properly."""
    line = '{"type":"deposit","account":"a\ud800","amount":5}'
    assert nesting(line) == 1
    with pytest.raises(MessageError) as caught:
        decode_message(line)
    assert str(caught.value) == "field 'account': must be printable (no control characters)"


def test_a_body_nested_past_the_interpreters_limit_is_refused_with_its_exact_message() -> None:
    """Kills codec.x_loads_strict__mutmut_7 ("XXnested too deeplyXX"): the existing test
    matches the message as a regular expression, which the mutant's message also contains;
    the gateway sends this text back to its client."""
    with pytest.raises(MessageError) as caught:
        loads_strict(b"[" * 100_000)
    assert str(caught.value) == "nested too deeply"


@pytest.mark.parametrize(
    "msg",
    [
        CALL,
        SettlementPrice(Underlying("BTC"), Expiry(100), Price(900)),
        Expire(Underlying("BTC"), Expiry(100)),
    ],
    ids=lambda m: type(m).__name__,
)
def test_the_reference_encoder_writes_the_keys_sorted_after_type(msg: Message) -> None:
    """Kills codec.xǁ_Codecǁencode__mutmut_9 (break instead of continue after the "type" key):
    ListSeries, SettlementPrice and Expire have "underlying" after "type". The property test
    comparing both encoders rebuilds each message from encode_reference's own line, so a line
    missing a key made it return early instead of failing."""
    line = encode_reference(msg)
    assert line == encode_message(msg)
    assert decode_message(line) == msg


def test_a_result_msgspec_cannot_write_is_written_by_json() -> None:
    """Kills codec.x_encode_result__mutmut_25 (b"XXXX" instead of b"" when msgspec raises): a
    result built directly may hold a lone surrogate, which msgspec refuses to encode; the line
    is then json's (escaped), as for every other result."""
    result = Result(None, fills=(Fill(AccountId("a\ud800"), 1, 50, 2),))
    assert encode_result(result) == (
        b'{"cancelled":[],"fills":[["a\\ud800",1,50,2]],"payouts":[],"reason":null}'
    )


def test_a_result_with_del_in_its_text_is_written_by_json() -> None:
    """msgspec writes DEL as it is and json escapes it: a traded result holding DEL is json's
    line (a fixed example: the property test above draws DEL only sometimes)."""
    result = Result(None, fills=(Fill(AccountId("a\x7fb"), 1, 50, 2),))
    assert encode_result(result) == (
        b'{"cancelled":[],"fills":[["a\\u007fb",1,50,2]],"payouts":[],"reason":null}'
    )
