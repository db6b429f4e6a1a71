"""The gateway's request bodies: split by msgspec and decoded element by element
(``gateway.decode_body``), they are accepted exactly when the whole body parsed by ``json``
(duplicate keys refused) and every element decoded by the reference is, into the same
messages; and the elements are logged as they came only where each is its message's canonical
line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_codec import _lines
from validator.engine import codec
from validator.engine.codec import decode_object, encode_messages, loads_strict
from validator.engine.errors import MessageError
from validator.engine.messages import Message
from validator.node.gateway import MAX_BATCH, decode_body


def reference(body: bytes, batch: bool) -> list[Message]:
    """What the gateway did before: ``json`` over the whole body, then each element."""
    parsed: Any = loads_strict(body)
    items = parsed if batch else [parsed]
    if not isinstance(items, list) or not items:
        raise MessageError("expected a non-empty JSON list")
    if len(items) > MAX_BATCH:
        raise MessageError("too many")
    return [decode_object(item) for item in items]


def outcome(decode: Any, body: bytes, batch: bool) -> tuple[str, object]:
    try:
        return ("ok", decode(body, batch))
    except MessageError:
        return ("refused", None)


def messages(body: bytes, batch: bool) -> list[Message]:
    """``decode_body``'s messages, after checking the lines it hands on: where it has them,
    they are exactly the messages' canonical lines (what the gateway would otherwise encode)."""
    msgs, lines = decode_body(body, batch)
    if lines is not None:
        assert lines == encode_messages(msgs)
    return msgs


separators = st.sampled_from([",", ", ", " ,", ",\n", "\t,\t"])


@given(lines=st.lists(_lines(), max_size=5), sep=separators, pad=st.sampled_from(["", " ", "\n"]))
@settings(max_examples=1500, deadline=None)
def test_a_batch_body_is_accepted_exactly_as_by_the_reference(
    lines: list[bytes], sep: str, pad: str
) -> None:
    body = pad + "[" + pad + sep.join(line.decode("utf-8", "surrogatepass") for line in lines)
    body += pad + "]" + pad
    raw = body.encode("utf-8", "surrogatepass")
    assert outcome(messages, raw, True) == outcome(reference, raw, True)


@given(line=_lines())
@settings(max_examples=1000, deadline=None)
def test_a_single_body_is_accepted_exactly_as_by_the_reference(line: bytes) -> None:
    assert outcome(messages, line, False) == outcome(reference, line, False)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[]", "expected a non-empty JSON list"),
        (b'{"type": "cancel"}', "expected a non-empty JSON list"),
        (b"[NaN]", "message 0: must be a JSON object"),  # msgspec cannot split it; json can
        (b'[{"type": "cancel", "account": "a", "order_id": 1}, 5]', "message 1: must be a JSON"),
        (b'[{"type": "cancel", "account": "a", "order_id": 1, "order_id": 2}]', "message 0: dup"),
        (b'[{"type": "cancel", "account": "a", "order_id": 1 }', "not valid JSON"),
        (b"[" + b",".join([b"1"] * (MAX_BATCH + 1)) + b"]", f"at most {MAX_BATCH} messages"),
    ],
)
def test_a_bad_body_is_refused_naming_the_message(body: bytes, error: str) -> None:
    with pytest.raises(MessageError, match=error.replace("dup", "duplicate key")):
        decode_body(body, True)


def test_a_body_as_json_dumps_writes_it_takes_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``json.dumps``'s separators put a space after each colon, never before: every element of
    such a body is decoded by msgspec, and the reference is asked for none."""
    items = [
        {"type": "cancel", "account": "a", "order_id": 1},
        {"type": "deposit", "account": "b c", "amount": 5, "request_id": 2},
    ]
    body = json.dumps(items).encode()
    assert b'": ' in body and b" :" not in body
    asked: list[object] = []
    monkeypatch.setattr(codec, "decode_object", lambda obj: asked.append(obj))
    assert decode_body(body, True) == ([decode_object(item) for item in items], None)
    assert asked == []
    body = body.replace(b'"amount": ', b'"amount" : ')  # a space before a colon: the reference
    decode_body(body, True)
    assert asked == [items[1]]


def test_a_body_of_canonical_lines_is_logged_as_it_came_and_any_other_is_encoded() -> None:
    """Compact JSON with its keys sorted is each message's canonical line: the gateway hands on
    the body's own elements. Keys in another order, a space, or an escape the canonical form
    does not use: the same messages, and no lines (the gateway encodes them)."""
    items = [
        {"type": "cancel", "account": "a", "order_id": 1},
        {"type": "deposit", "account": "b c", "amount": 5, "request_id": 2},
    ]
    msgs = [decode_object(item) for item in items]
    canonical = b"[" + b",".join(encode_messages(msgs)) + b"]"
    assert decode_body(canonical, True) == (msgs, encode_messages(msgs))
    assert decode_body(canonical.replace(b",", b", ", 1), True) == (msgs, None)
    unsorted = json.dumps(items, separators=(",", ":")).encode()
    assert unsorted != canonical and decode_body(unsorted, True) == (msgs, None)
    escaped = canonical.replace(b'"b c"', b'"b\\u0020c"')
    assert escaped != canonical and decode_body(escaped, True) == (msgs, None)
