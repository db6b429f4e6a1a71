"""Canonical line format of the input log and of results: one JSON object per line.

Canonical means: keys sorted, no whitespace, ASCII only, every field present but a transfer's
``request_id`` when it is 0 (left out, so that a transfer without an id is the line it was before
the field existed).
``decode_message`` accepts any JSON object with the right fields and types (a
field with a default may be omitted); ``encode_message`` always writes the
canonical form, so ``encode(decode(line))`` is the line's canonical twin.

Example::

    {"account":"alice","kind":"gtc","order_id":7,"price":120,"qty":3,"series":"BTC-20250627-60000-P","side":"buy","type":"order"}

Wire rules: strings are 1-64 printable characters (no control characters); integers
are JSON integers (not booleans, not floats) within a signed 64-bit word; enums
are their lower-case names; a key may appear only once. Anything else raises
``MessageError``, naming the field where there is one.

Two decoders accept exactly the same lines and build the same messages:

- the **reference** (``decode_object(loads_strict(line))``): Python's ``json`` with duplicate
  keys refused, then one check per field; its errors are the ones raised, word for word;
- the **fast path** (``decode_message`` on bytes, ``decode_lines`` for a whole chunk of the
  log): msgspec decodes straight into the message structs, checking types, bounds, enum values,
  unknown and missing fields in C. msgspec does not refuse duplicate keys and does not know
  "printable", so it is trusted only on *plain* text: every byte printable ASCII other than
  space and backslash (``_PLAIN``; ``decode_message`` also takes spaces, never right before a
  colon, so that a gateway's body written by ``json.dumps`` takes it too). In plain text a
  string has no escapes, no quote and no control character, and a key is a string immediately
  followed by ``:`` while a string value never is; so ``":`` occurs once per key (and once
  more where a value starts with ``:``, which only sends the line to the reference), and
  each line's count of it must equal its class's number of fields plus one (``type``), with the
  optional keys (``kind`` of an order, ``cap`` of a listing, ``request_id`` of a transfer)
  present on every line of those classes: then every key appears exactly once (a transfer's
  line holds ``request_id`` or has one key fewer: it is checked line by line). Anything else -
  a malformed line, escapes, non-ASCII text, other whitespace, a space before a colon, an
  omitted optional field - goes to the reference, which accepts it or names the problem.
  ``tests/unit/test_codec.py`` checks the two against each other on generated lines. A chunk of
  the log is first tried by a shorter argument: each of its lines is the canonical line of the
  message msgspec decoded for it (what a gateway writes), which holds every key once; the counts
  judge only a chunk that is not.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from itertools import repeat
from typing import Any

import msgspec

from redundancy.evidence import nesting_depth
from validator.engine.errors import MessageError
from validator.engine.messages import (
    MAX_STRING,
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
from validator.engine.primitives import INT_LIMIT
from validator.engine.results import ACCEPTED, REJECTED, RejectReason, Result

MESSAGES: tuple[type[Message], ...] = (
    ListSeries,
    Deposit,
    Withdraw,
    NewOrder,
    Cancel,
    CancelReplace,
    SettlementPrice,
    Expire,
)
TAGS: dict[type[Any], str] = {cls: str(cls.__struct_config__.tag) for cls in MESSAGES}
"""The ``type`` field of each message class on the wire."""

_STR, _INT, _ENUM = 0, 1, 2


def _kind(annotation: Any) -> int | type[Enum]:
    """How a field travels, from its type: a string, an integer, or an enum's value."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    while hasattr(annotation, "__supertype__"):  # a NewType
        annotation = annotation.__supertype__
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    return {str: _STR, int: _INT}[annotation]


class _Field:
    """How to read and write one field of one message class."""

    __slots__ = ("default", "kind", "members", "name", "names", "omit", "optional")

    def __init__(self, field: msgspec.structs.FieldInfo) -> None:
        self.name = field.name
        spec = _kind(field.type)
        self.kind = spec if isinstance(spec, int) else _ENUM
        self.members: dict[str, Enum] = {}
        if not isinstance(spec, int):
            self.members = {member.value: member for member in spec}
        self.names = ", ".join(sorted(self.members))
        self.optional = field.default is not msgspec.NODEFAULT
        self.default: object = field.default
        self.omit = False
        """Left out of the canonical line at its default (set by the class's codec)."""

    def parse(self, value: object) -> object:
        """The field's value from JSON, or ``MessageError`` naming the field."""
        kind = self.kind
        if kind == _INT:
            if type(value) is int and -INT_LIMIT < value < INT_LIMIT:
                return value
            if type(value) is not int:
                raise MessageError("must be an integer", field=self.name)
            raise MessageError("must fit a signed 64-bit integer", field=self.name)
        if kind == _STR:
            if type(value) is str and 0 < len(value) <= MAX_STRING and value.isprintable():
                return value
            if type(value) is not str:
                raise MessageError("must be a string", field=self.name)
            if not 0 < len(value) <= MAX_STRING:
                raise MessageError(f"must be 1-{MAX_STRING} characters", field=self.name)
            raise MessageError("must be printable (no control characters)", field=self.name)
        member = self.members.get(value) if type(value) is str else None
        if member is None:
            raise MessageError(f"must be one of {self.names}", field=self.name)
        return member


class _Codec:
    """Decoder and canonical encoder of one message class."""

    __slots__ = ("allowed", "cls", "fields", "required", "tag", "template")

    def __init__(self, cls: type[Any], tag: str) -> None:
        self.cls = cls
        self.tag = tag
        self.fields = tuple(_Field(field) for field in msgspec.structs.fields(cls))
        for field in self.fields:
            field.omit = field.optional and bool(cls.__struct_config__.omit_defaults)
        self.required = {field.name for field in self.fields if not field.optional} | {"type"}
        self.allowed = {field.name for field in self.fields} | {"type"}
        # Canonical output: keys sorted, "type" among them.
        by_name: dict[str, _Field | None] = {field.name: field for field in self.fields}
        by_name["type"] = None
        self.template = tuple((f'"{key}":', by_name[key]) for key in sorted(by_name))

    def compile(self) -> Callable[[dict[str, object]], Message]:
        """A decoder specialised to this class: every check inline, no per-field calls.

        It accepts exactly what ``decode`` accepts and hands anything else to ``decode`` for
        the error, so errors stay word for word the same (about 3x faster on valid input,
        which is what the nodes and gateways decode all day).
        """
        env: dict[str, object] = {"_slow": self.decode, "_cls": self.cls, "_MISSING": _MISSING}
        defaults = {f.name: f.default for f in msgspec.structs.fields(self.cls)}
        body, args = [], []
        for i, field in enumerate(self.fields):
            v = f"v{i}"
            if field.kind == _INT:
                checks = [f"if type({v}) is not int or not {-INT_LIMIT} < {v} < {INT_LIMIT}:"]
            elif field.kind == _STR:
                checks = [
                    f"if type({v}) is not str or not 0 < len({v}) <= {MAX_STRING} "
                    f"or not {v}.isprintable():"
                ]
            else:
                env[f"_m{i}"] = field.members
                checks = [f"{v} = _m{i}.get({v}) if type({v}) is str else None", f"if {v} is None:"]
            checks.append("    return _slow(obj)")
            body.append(f"{v} = obj.get({field.name!r}, _MISSING)")
            if field.optional:
                env[f"_d{i}"] = defaults[field.name]
                body += [f"if {v} is _MISSING:", "    n -= 1", f"    {v} = _d{i}", "else:"]
                body += ["    " + line for line in checks]
            else:
                body += [f"if {v} is _MISSING:", "    return _slow(obj)", *checks]
            args.append(v)
        source = "\n".join(
            [
                "def decode(obj):",
                f"    n = {len(self.fields) + 1}",
                *["    " + line for line in body],
                "    if len(obj) != n: return _slow(obj)",
                f"    return _cls({', '.join(args)})",
            ]
        )
        exec(compile(source, f"<decoder of {self.cls.__name__}>", "exec"), env)
        decoder: Callable[[dict[str, object]], Message] = env["decode"]  # type: ignore[assignment]
        return decoder

    def decode(self, obj: dict[str, object]) -> Message:
        keys = obj.keys()
        if not self.required <= keys <= self.allowed:
            unknown = sorted(keys - self.allowed)
            if unknown:
                raise MessageError("unknown field", field=unknown[0])
            raise MessageError("missing", field=sorted(self.required - keys)[0])
        values = {
            field.name: field.parse(obj[field.name]) for field in self.fields if field.name in obj
        }
        message: Message = self.cls(**values)
        return message

    def encode(self, msg: Message) -> bytes:
        parts = []
        for key, field in self.template:
            if field is None:
                parts.append(key + '"' + self.tag + '"')
                continue
            value = getattr(msg, field.name)
            if field.omit and value == field.default:
                continue
            if field.kind == _STR:
                parts.append(key + _quote(value))
            elif field.kind == _INT:
                parts.append(key + str(value))
            else:
                parts.append(key + '"' + value.value + '"')
        return ("{" + ",".join(parts) + "}").encode("ascii")


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""JSON string literal, as ``json.dumps`` writes it (the C implementation)."""

_MISSING = object()
_CODECS: dict[type[Any], _Codec] = {cls: _Codec(cls, tag) for cls, tag in TAGS.items()}
_BY_TAG: dict[str, _Codec] = {codec.tag: codec for codec in _CODECS.values()}
_DECODERS: dict[str, Callable[[dict[str, object]], Message]] = {
    tag: codec.compile() for tag, codec in _BY_TAG.items()
}


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MessageError("duplicate key in JSON object")
    return obj


MAX_NESTING = 16
"""How deeply a log line may nest arrays and objects (a message nests one level)."""


def nesting(text: str | bytes, limit: int = MAX_NESTING) -> int:
    """How deeply ``text``'s arrays and objects nest, counting no further than ``limit + 1``:
    one pass without recursion, so that the answer never depends on the stack (brackets inside
    strings are skipped)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return nesting_depth(raw, limit)


def loads_strict(text: str | bytes) -> object:
    """JSON with every object's keys unique; ``MessageError`` if it is not (also if it nests
    deeper than the interpreter's recursion limit allows)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except MessageError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise MessageError("nested too deeply") from None


_PLAIN = bytes(b for b in range(0x21, 0x7F) if b != ord("\\"))
"""Bytes of plain text: printable ASCII but space and backslash (see the module doc)."""
_SPACED = _PLAIN + b" "
"""Plain text as ``decode_message`` takes it: spaces too, but never right before a colon (a key
followed by one would not be counted, and a doubled key could make up for it)."""
_KEYS: dict[type[Any], int] = {cls: len(cls.__struct_fields__) + 1 for cls in MESSAGES}
"""Keys of a line of each class with every field present: its fields and ``type``."""
_OPTIONAL: dict[type[Any], tuple[bytes, ...]] = {
    cls: tuple(
        f'"{f.name}":'.encode()
        for f in msgspec.structs.fields(cls)
        if f.default is not msgspec.NODEFAULT
    )
    for cls in MESSAGES
}
"""The keys of each class's optional fields, as they open on a line (``"kind":``)."""
_OMITTED: dict[type[Any], bytes] = {
    cls: _OPTIONAL[cls][0] for cls in MESSAGES if cls.__struct_config__.omit_defaults
}
"""Classes whose optional key is left out at its default, and that key."""
_OMITTED_FIELD: dict[type[Any], str] = {
    cls: next(f.name for f in msgspec.structs.fields(cls) if f.default is not msgspec.NODEFAULT)
    for cls in _OMITTED
}
"""The field each of those classes leaves out at its default."""
_BASE_KEYS: dict[type[Any], int] = {cls: _KEYS[cls] - (cls in _OMITTED) for cls in MESSAGES}
"""Keys of a line of each class as most are written: without a left-out field."""
_OMITTED_KEYS = tuple(sorted(set(_OMITTED.values())))
if any(len(_OPTIONAL[cls]) != 1 for cls in _OMITTED):  # pragma: no cover - a future message
    raise AssertionError("an omit-defaults message has exactly one optional field")
_OPTIONAL_KEYS: dict[bytes, tuple[type[Any], ...]] = {
    key: tuple(cls for cls in MESSAGES if key in _OPTIONAL[cls])
    for key in sorted(
        {key for cls, keys in _OPTIONAL.items() if cls not in _OMITTED for key in keys}
    )
}
"""Each optional key and the classes that have it."""
if any(len(keys) > 1 for keys in _OPTIONAL.values()):  # pragma: no cover - a future message
    raise AssertionError("decode_message checks at most one optional key per class")
_FAST_LINE = msgspec.json.Decoder(Message)
_FAST_LINES = msgspec.json.Decoder(list[Message])


def decode_message(line: str | bytes) -> Message:
    """Parse one log line into a message; raise ``MessageError`` if it is malformed."""
    if type(line) is bytes and not line.translate(None, _SPACED) and b" :" not in line:
        try:
            msg: Message = _FAST_LINE.decode(line)
        except (msgspec.MsgspecError, RecursionError):  # RecursionError: skipping a deep value
            pass
        else:
            cls = msg.__class__
            optional = _OPTIONAL[cls]  # at most one key (checked at import)
            present = not optional or optional[0] in line
            keys = _KEYS[cls] if present else _KEYS[cls] - 1
            if line.count(b'":') == keys and (present or cls in _OMITTED):
                return msg
    # Before the parser, which recurses (so would msgspec's above, where it failed for it): a
    # line nested this deep is refused the same way on every node, whatever its stack.
    if nesting(line) > MAX_NESTING:
        raise MessageError(f"nested deeper than {MAX_NESTING} levels")
    return decode_object(loads_strict(line))


def _decode_joined(lines: list[bytes], spaced: bool) -> tuple[bytes, list[Message]] | None:
    """The lines joined as one JSON array and decoded by one msgspec call: (the array, its
    messages), or None where a line is not plain text (``spaced``: or spaced text, as
    ``decode_lines`` says), msgspec refuses the array, or it does not hold one message a line.

    The lines are joined with a newline before each comma: plain text holds none, and no JSON
    string can span one, so a string cannot run from one line into the next (found by review:
    a comma inside a string value used as the line break made two lines the reference refuses
    into valid elements)."""
    joined = b"[" + b"\n,".join(lines) + b"]"
    # Plain text: what is left once the allowed bytes are deleted is the separators' newlines
    # (the brackets and commas are plain), and a line's own byte that is not plain adds to it.
    if joined.translate(None, _SPACED if spaced else _PLAIN) != b"\n" * (len(lines) - 1) or (
        spaced and b" :" in joined
    ):
        return None
    try:
        msgs: list[Message] = _FAST_LINES.decode(joined)
    except (msgspec.MsgspecError, RecursionError):  # the lines one by one say which and why
        return None
    if len(msgs) != len(lines):  # a line held several objects, or none
        return None
    return joined, msgs


def decode_lines(lines: Sequence[bytes], *, spaced: bool = False) -> list[Message] | None:
    """Every line decoded at once by the fast path, or None if any line needs the reference
    (then decode them one by one with ``decode_message``, which accepts or explains each).

    One msgspec call per chunk: the lines as one JSON array (``_decode_joined``).

    Then, first, the canonical check: every line is the canonical line (``encode_message``) of
    the message decoded for it. A log line is what a gateway wrote, so on a node this is the
    common case, and it settles everything at once: a canonical line holds exactly one object
    with each key once, and in plain text (printable ASCII but space and backslash: no escapes)
    the reference decodes it to the same message (re-encoding the messages costs less than the
    key counts below: 0.20 against 0.29 us a line in 200-line chunks). A
    chunk that fails it is judged by those counts, as it always was; see the module doc for
    why they rule out duplicate keys. Before the counts, each line must start with "{" and end
    with "}": with strings kept to their lines and no message holding a nested value, such a
    line holds whole objects only, and as many objects as lines make it exactly one each (key
    counts alone did not: an object run on from one line into the next could balance a doubled
    key in one against a missing optional key in the other).

    ``spaced``: the lines may also hold spaces, never right before a colon (as
    ``decode_message`` takes them; a gateway's body elements as ``json.dumps`` writes them,
    which are never canonical: the canonical check is tried only where the first line does not
    look so).
    """
    decoded = _decode(lines if type(lines) is list else list(lines), spaced)
    return None if decoded is None else decoded[0]


def decode_request_lines(lines: list[bytes]) -> tuple[list[Message], bool] | None:
    """``decode_lines(lines, spaced=True)`` and whether every line is its message's canonical
    line (``encode_message``): a gateway then takes a request's lines as they came, without
    encoding its messages again (a client sends them so by writing compact JSON with its keys
    sorted, as ``encode_message`` does)."""
    return _decode(lines, spaced=True)


def _decode(lines: list[bytes], spaced: bool) -> tuple[list[Message], bool] | None:
    """``decode_lines``: (the messages, whether each line is canonical), or None."""
    decoded = _decode_joined(lines, spaced)
    if decoded is None:
        return None
    joined, msgs = decoded
    # The canonical check; for spaced lines only where the first does not show json.dumps's
    # spaces (a canonical line never holds '": ': a quote in a string value is escaped)
    if (not spaced or (lines and b'": ' not in lines[0])) and list(
        map(_SORTED_ENCODE, msgs)
    ) == lines:
        return msgs, True  # each line canonical: ASCII without DEL here, so msgspec's is it
    # Each line its own object: it opens one where it starts and closes one where it ends. A
    # message's values are scalars, so its object has no brace inside but in strings, and no
    # string spans a line; so a line that starts with "{" and ends with "}" holds whole objects
    # only, one or more, and as many objects as lines make it one each. Without this, an object
    # could run from one line into the next and the key counts below be balanced across the
    # two (a key doubled in one object, an optional key missing in the other): two lines the
    # reference refuses, taken (found by review, with slices of a chunk decoded apart).
    if lines and (
        joined[:2] != b"[{" or joined[-2:] != b"}]" or joined.count(b"}\n,{") != len(lines) - 1
    ):
        return None
    classes = list(map(type, msgs))
    counts = list(map(bytes.count, lines, repeat(b'":')))
    # The common chunk: no transfer holds an id (no such key anywhere), every line its class's
    # keys but that one. Otherwise each line's count is taken from its message, not from its
    # line: a key on the line before its object must not move what a line is expected to hold.
    # (The separators and brackets added to ``joined`` make or break no key: no key holds them.)
    if counts != list(map(_BASE_KEYS.__getitem__, classes)) or any(
        key in joined for key in _OMITTED_KEYS
    ):
        expected = [
            _KEYS[cls] - (cls in _OMITTED and not getattr(msg, _OMITTED_FIELD[cls]))
            for cls, msg in zip(classes, msgs, strict=True)
        ]
        if counts != expected:
            return None
    # Each line has exactly its class's number of keys, each required key at least once: so an
    # optional key appears at most once per line, and exactly once when the totals match.
    for key, owners in _OPTIONAL_KEYS.items():
        if joined.count(key) != sum(map(classes.count, owners)):
            return None
    return msgs, False


def decode_object(obj: object) -> Message:
    """A message from an already parsed JSON value (parsed with ``loads_strict``)."""
    if type(obj) is not dict:
        raise MessageError("must be a JSON object")
    tag = obj.get("type")
    decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decoder is None:
        raise MessageError(f"must be one of {', '.join(sorted(_BY_TAG))}", field="type")
    return decoder(obj)


_SORTED = msgspec.json.Encoder(order="sorted")
_SORTED_ENCODE = _SORTED.encode
_ENCODE = msgspec.json.Encoder().encode


def encode_message(msg: Message) -> bytes:
    """The canonical line of a message (no trailing newline).

    msgspec writes it (keys sorted, no whitespace, about 4x faster) and its line is kept when it
    is ASCII without DEL: for such text both escape exactly ``"``, ``\\`` and the control
    characters, alike. Text beyond ASCII (which the canonical form escapes as ``\\uXXXX``),
    DEL, or anything msgspec cannot write goes through the per-class reference encoder.
    """
    try:
        line = _SORTED.encode(msg)
    except (msgspec.EncodeError, UnicodeEncodeError, OverflowError, TypeError):
        return _CODECS[msg.__class__].encode(msg)
    if line.isascii() and b"\x7f" not in line:
        return line
    return _CODECS[msg.__class__].encode(msg)


def encode_messages(msgs: Sequence[Message]) -> list[bytes]:
    """``[encode_message(msg) for msg in msgs]``, with one check over all the lines instead of
    one per line (a gateway encodes every message of a request)."""
    try:
        lines = list(map(_SORTED_ENCODE, msgs))
    except (msgspec.EncodeError, UnicodeEncodeError, OverflowError, TypeError):
        return [encode_message(msg) for msg in msgs]
    text = b"".join(lines)
    if text.isascii() and b"\x7f" not in text:
        return lines
    return [encode_message(msg) for msg in msgs]


def encode_reference(msg: Message) -> bytes:
    """``encode_message`` by the per-class template alone (what it returns, always)."""
    return _CODECS[msg.__class__].encode(msg)


def encode_result(result: Result) -> bytes:
    """The canonical line of a result; used by the hash chain and the replay tool.

    A result that traded is encoded on every node for the hash chain, so its line is put
    together from its keys in sorted order around msgspec's encoding of each field (a named
    tuple is an array, as ``json`` writes it); that is ``_dump``'s line where it is ASCII
    without DEL (as in ``encode_message``), and half the cost of encoding the object with its
    keys sorted on every call. Anything else goes through ``_dump``.
    """
    if not (result.fills or result.cancelled or result.payouts):
        return _STATUS_LINES[result.reason]
    reason = result.reason
    try:
        line = b"".join(
            (
                b'{"cancelled":',
                _ENCODE(result.cancelled),
                b',"fills":',
                _ENCODE(result.fills),
                b',"payouts":',
                _ENCODE(result.payouts),
                b',"reason":',
                _ENCODE(None if reason is None else reason.value),
                b"}",
            )
        )
    except (msgspec.EncodeError, UnicodeEncodeError, OverflowError, TypeError):
        line = b""
    if line and line.isascii() and b"\x7f" not in line:
        return line
    return _dump(
        {
            "reason": None if reason is None else reason.value,
            "fills": result.fills,  # tuples of named tuples: arrays of arrays, as lists would be
            "cancelled": result.cancelled,
            "payouts": result.payouts,
        }
    )


def encode_results(results: Iterable[Result]) -> list[bytes]:
    """The canonical lines of many results (the shared status results by a lookup)."""
    status = _STATUS_BY_ID
    return [status.get(id(result)) or encode_result(result) for result in results]


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
_STATUS_BY_ID: dict[int, bytes] = {
    id(result): _STATUS_LINES[result.reason] for result in [ACCEPTED, *REJECTED.values()]
}
"""The shared status results (module constants, never freed) by identity."""
