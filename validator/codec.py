"""Canonical line format of the input log and of results: one JSON object per line.

Canonical means: keys sorted, no whitespace, ASCII only, every field present.
``decode_message`` accepts any JSON object with the right fields and types (a
field with a default may be omitted); ``encode_message`` always writes the
canonical form, so ``encode(decode(line))`` is the line's canonical twin.

Example::

    {"account":"alice","kind":"gtc","order_id":7,"price":120,"qty":3,"series":"BTC-20250627-60000-P","side":"buy","type":"order"}

Wire rules: strings are 1-64 characters with no control characters; integers
are JSON integers (not booleans, not floats) within a signed 64-bit word; enums
are their lower-case names; a key may appear only once. Anything else raises
``MessageError``, naming the field where there is one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from enum import Enum
from typing import Any

from validator.domain import INT_LIMIT, OptionType, OrderKind, Side
from validator.errors import MessageError
from validator.messages import (
    Cancel,
    CancelReplace,
    Deposit,
    Expire,
    ListSeries,
    Message,
    NewOrder,
    SettlementPrice,
    Withdraw,
)
from validator.results import RejectReason, Result

TAGS: dict[type[Any], str] = {
    ListSeries: "list_series",
    Deposit: "deposit",
    Withdraw: "withdraw",
    NewOrder: "order",
    Cancel: "cancel",
    CancelReplace: "replace",
    SettlementPrice: "settlement_price",
    Expire: "expire",
}
"""The ``type`` field of each message class on the wire."""

MAX_STRING = 64


def _text(value: object, field: str) -> str:
    if type(value) is not str:
        raise MessageError("must be a string", field=field)
    if not 1 <= len(value) <= MAX_STRING:
        raise MessageError(f"must be 1-{MAX_STRING} characters", field=field)
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise MessageError("must not contain control characters", field=field)
    return value


def _integer(value: object, field: str) -> int:
    if type(value) is not int:
        raise MessageError("must be an integer", field=field)
    if not -INT_LIMIT < value < INT_LIMIT:
        raise MessageError("must fit a signed 64-bit integer", field=field)
    return value


def _enum(enum: type[Enum]) -> Callable[[object, str], Enum]:
    names = sorted(member.value for member in enum)

    def parse(value: object, field: str) -> Enum:
        try:
            return enum(value)
        except ValueError:
            raise MessageError(f"must be one of {', '.join(names)}", field=field) from None

    return parse


_PARSERS: dict[str, Callable[[object, str], object]] = {
    "AccountId": _text,
    "SeriesId": _text,
    "Underlying": _text,
    "OrderId": _integer,
    "Expiry": _integer,
    "Price": _integer,
    "Quantity": _integer,
    "Cash": _integer,
    "int": _integer,
    "Side": _enum(Side),
    "OrderKind": _enum(OrderKind),
    "OptionType": _enum(OptionType),
}

_Spec = tuple[tuple[str, Callable[[object, str], object], bool], ...]


def _spec(cls: type[Any]) -> _Spec:
    """(name, parser, has_default) per field, from the dataclass's annotations."""
    return tuple(
        (
            field.name,
            _PARSERS[str(field.type)],
            field.default is not dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
    )


_CLASSES: dict[str, type[Any]] = {tag: cls for cls, tag in TAGS.items()}
_SPECS: dict[type[Any], _Spec] = {cls: _spec(cls) for cls in TAGS}


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MessageError("duplicate key in JSON object")
    return obj


def decode_message(line: str | bytes) -> Message:
    """Parse one log line into a message; raise ``MessageError`` if it is malformed."""
    try:
        obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
    except MessageError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not valid JSON ({exc})") from None
    if type(obj) is not dict:
        raise MessageError("must be a JSON object")
    tag = obj.get("type")
    cls = _CLASSES.get(tag) if type(tag) is str else None
    if cls is None:
        raise MessageError(f"must be one of {', '.join(sorted(_CLASSES))}", field="type")
    spec = _SPECS[cls]
    unknown = set(obj) - {name for name, _, _ in spec} - {"type"}
    if unknown:
        raise MessageError("unknown field", field=sorted(unknown)[0])
    values: dict[str, object] = {}
    for name, parse, optional in spec:
        if name in obj:
            values[name] = parse(obj[name], name)
        elif not optional:
            raise MessageError("missing", field=name)
    message: Message = cls(**values)
    return message


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def encode_message(msg: Message) -> bytes:
    """The canonical line of a message (no trailing newline)."""
    obj: dict[str, object] = {"type": TAGS[type(msg)]}
    for name, _, _ in _SPECS[type(msg)]:
        obj[name] = _plain(getattr(msg, name))
    return _dump(obj)


def encode_result(result: Result) -> bytes:
    """The canonical line of a result; used by the hash chain and the replay tool."""
    if not (result.fills or result.cancelled or result.payouts):
        return _STATUS_LINES[result.reason]
    obj: dict[str, object] = {
        "reason": None if result.reason is None else result.reason.value,
        "fills": [list(fill) for fill in result.fills],
        "cancelled": [list(order) for order in result.cancelled],
        "payouts": [list(payout) for payout in result.payouts],
    }
    return _dump(obj)


def _dump(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


_STATUS_LINES: dict[RejectReason | None, bytes] = {
    reason: _dump(
        {
            "cancelled": [],
            "fills": [],
            "payouts": [],
            "reason": None if reason is None else reason.value,
        }
    )
    for reason in [None, *RejectReason]
}
