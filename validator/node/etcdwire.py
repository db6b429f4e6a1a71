"""etcd's gRPC messages for the two calls on the order path, encoded and decoded by hand.

The log's hot path is two etcd calls: the gateway's create-if-absent transaction (``KV/Txn``)
and the nodes' watch (``Watch/Watch``). Through etcd's JSON gateway every chunk is base64 in JSON
both ways and etcd transcodes it to protobuf and back over an internal connection; measured on
this machine with 75 KB chunks, etcd spent 6.3-6.7 CPU-seconds per 1,000 transactions through
the JSON gateway against 2.3-2.5 over gRPC, and a small transaction's round trip fell from
2.0 ms to 1.4 ms (docs/validator-nodes.md). So those two calls speak gRPC (``grpcio``, with
bytes in and out), and this module writes and reads the few protobuf messages they need,
field numbers as in etcd's ``rpc.proto`` and ``kv.proto`` (3.4; unchanged since 3.0):

- ``TxnRequest``: compare (1), success (2), failure (3); ``Compare``: result (1), target (2), key
  (3), create_revision (5); ``RequestOp``: request_range (1), request_put (2);
  ``PutRequest``/``RangeRequest``: key (1), value (2);
- ``TxnResponse``: header (1), succeeded (2), responses (3); ``ResponseHeader``: revision (3);
  ``ResponseOp``: response_range (1); ``RangeResponse``: kvs (2);
- ``WatchRequest``: create_request (1); ``WatchCreateRequest``: key (1), range_end (2),
  start_revision (3), filters (5, packed enum; NODELETE = 1);
- ``WatchResponse``: created (3), canceled (4), compact_revision (5), cancel_reason (6),
  events (11); ``Event``: type (1, PUT = 0), kv (2); ``KeyValue``: key (1), mod_revision (3),
  value (5).

Unknown fields are skipped, as protobuf requires. ``tests/integration/test_etcd_grpc.py`` sends
the same requests through both transports to a real cluster and compares the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TXN = "/etcdserverpb.KV/Txn"
WATCH = "/etcdserverpb.Watch/Watch"

_VARINT, _LEN = 0, 2
_CREATE_TARGET, _VALUE_TARGET = 1, 3
_LESS = 2
_NODELETE = 1


class WireError(ValueError):
    """A message that is not valid protobuf (truncated, or a wire type etcd never sends)."""


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 as protobuf writes it: ten bytes, two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value)


def _read_varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf: memoryview) -> list[tuple[int, int | memoryview]]:
    """A message's fields in order: (number, int for a varint, a view of the bytes for a
    length-delimited field: no copy until a value is kept); fixed-width fields (which etcd's
    messages do not use) are skipped."""
    out: list[tuple[int, int | memoryview]] = []
    i, end = 0, len(buf)
    while i < end:
        tag, i = _read_varint(buf, i)
        number, kind = tag >> 3, tag & 7
        if kind == _VARINT:
            value, i = _read_varint(buf, i)
            out.append((number, value))
        elif kind == _LEN:
            size, i = _read_varint(buf, i)
            if i + size > end:
                raise WireError(f"field {number} runs past the message")
            out.append((number, buf[i : i + size]))
            i += size
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        else:
            raise WireError(f"field {number} has wire type {kind}")
    if i != end:
        raise WireError("truncated fixed-width field")
    return out


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def create_if_absent(key: bytes, value: bytes, floor: tuple[bytes, bytes] | None = None) -> bytes:
    """``TxnRequest``: put ``key`` = ``value`` if the key was never created (and, with ``floor``
    = (floor key, bound), only if the floor key's value is below ``bound``), else range it."""
    compare = _int_field(2, _CREATE_TARGET) + _bytes_field(3, key) + _int_field(5, 0)
    compares = _bytes_field(1, compare)
    if floor is not None:
        below = (
            _int_field(1, _LESS)
            + _int_field(2, _VALUE_TARGET)
            + _bytes_field(3, floor[0])
            + _bytes_field(7, floor[1])
        )
        compares += _bytes_field(1, below)
    put = _bytes_field(1, key) + _bytes_field(2, value)
    return (
        compares
        + _bytes_field(2, _bytes_field(2, put))
        + _bytes_field(3, _bytes_field(1, _bytes_field(1, key)))
    )


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int


def key_value(buf: memoryview) -> KeyValue:
    key, value, mod = b"", b"", 0
    for number, v in fields(buf):
        if isinstance(v, int):
            if number == 3:
                mod = _int64(v)
        elif number == 1:
            key = bytes(v)
        elif number == 5:
            value = bytes(v)
    return KeyValue(key, value, mod)


def _header_revision(buf: memoryview) -> int:
    for number, v in fields(buf):
        if number == 3 and isinstance(v, int):
            return _int64(v)
    return 0


@dataclass(frozen=True, slots=True)
class TxnAnswer:
    succeeded: bool
    revision: int
    """The header's revision: the store's revision after the transaction."""
    ranged: list[KeyValue]
    """The kvs of the first ``response_range`` (the failure branch's read)."""


def txn_answer(buf: bytes) -> TxnAnswer:
    succeeded, revision = False, 0
    ranged: list[KeyValue] = []
    found_range = False
    for number, v in fields(memoryview(buf)):
        if isinstance(v, int):
            if number == 2:
                succeeded = bool(v)
        elif number == 1:
            revision = _header_revision(v)
        elif number == 3 and not found_range:
            for op_number, op in fields(v):
                if op_number == 1 and not isinstance(op, int):
                    found_range = True
                    ranged = [
                        key_value(kv) for n, kv in fields(op) if n == 2 and not isinstance(kv, int)
                    ]
    return TxnAnswer(succeeded, revision, ranged)


def watch_create(start: bytes, end: bytes, revision: int) -> bytes:
    """``WatchRequest``: watch puts (no deletes) to ``[start, end)`` from ``revision``."""
    create = (
        _bytes_field(1, start)
        + _bytes_field(2, end)
        + _int_field(3, revision)
        + _bytes_field(5, _varint(_NODELETE))
    )
    return _bytes_field(1, create)


@dataclass(frozen=True, slots=True)
class WatchAnswer:
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    puts: list[KeyValue] = field(default_factory=list)


def watch_answer(buf: bytes) -> WatchAnswer:
    created = canceled = False
    compact, reason = 0, ""
    puts: list[KeyValue] = []
    for number, v in fields(memoryview(buf)):
        if isinstance(v, int):
            if number == 3:
                created = bool(v)
            elif number == 4:
                canceled = bool(v)
            elif number == 5:
                compact = _int64(v)
        elif number == 6:
            reason = bytes(v).decode("utf-8", "replace")
        elif number == 11:
            kind, kv = 0, memoryview(b"")
            for n, ev in fields(v):
                if isinstance(ev, int):
                    if n == 1:
                        kind = ev
                elif n == 2:
                    kv = ev
            if kind == 0:
                puts.append(key_value(kv))
    return WatchAnswer(created, canceled, compact, reason, puts)
