"""Running hash chain over the input log and its results: a cheap commitment per chunk of inputs.

One link per chunk (a node links once per etcd chunk of the log; ``link`` is a chunk of one)::

    h_0 = sha256("dc-redundancy/validator/chain/v2")
    h_k = sha256(h_{k-1} || n as 8 bytes big-endian
                 || line_1 "\\n" result_1 "\\n" || ... || line_m "\\n" result_m "\\n")

where the chunk holds inputs ``n-m+1 .. n``, ``line_i`` is the log line applied (the bytes the
node read; for every line a gateway writes, the message's canonical line) and ``result_i`` its
canonical result line (``codec.encode_result``).

Why two nodes with equal heads applied identical inputs in identical order with identical
results: no line and no result line contains a newline (log lines are split on it; canonical
JSON escapes it), so the bytes hashed into one link determine ``h_{k-1}``, ``n`` and the exact
sequence of (line, result) pairs, and, going back link by link, the whole history. Two
different histories with the same head would therefore be a sha256 collision. Flipping one
input anywhere changes that link and every later head (``tests/unit/test_chain.py``).

The cost is one sha256 per chunk over about 150 bytes per input (no per-input hash call, no
per-input re-encoding of the input when the node hashes the line it read), independent of the
size of the state. The full-state root (``Engine.state_hash``, sha256 of the canonical
snapshot) proves equal state directly and is computed at checkpoints.

Heads depend on how the inputs are cut into chunks: nodes compare heads of the same etcd
chunks; ``link`` (one input per link) is what the replay tool uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from itertools import chain

from validator.engine.codec import encode_message, encode_results
from validator.engine.messages import Message
from validator.engine.results import Result

GENESIS = sha256(b"dc-redundancy/validator/chain/v2").digest()
"""``h_0``: the head before any input."""


def records(lines: Sequence[bytes], results: Sequence[Result]) -> bytes:
    """The bytes a link hashes for these applied inputs: ``line "\\n" result "\\n"`` each, in
    order (empty for none)."""
    if len(lines) != len(results):
        raise ValueError(f"{len(lines)} lines but {len(results)} results")
    if not lines:
        return b""
    return b"\n".join(chain.from_iterable(zip(lines, encode_results(results), strict=True))) + b"\n"


class HashChain:
    """The chain head after input ``seq``."""

    __slots__ = ("head", "seq")

    def __init__(self, seq: int = 0, head: bytes = GENESIS) -> None:
        self.seq = seq
        self.head = head

    def extend(self, lines: Sequence[bytes], results: Sequence[Result]) -> bytes:
        """Extend the chain by one chunk of applied inputs (their log lines) and their results,
        in order; return the new head."""
        return self.extend_records(len(lines), [records(lines, results)])

    def extend_records(self, count: int, parts: Sequence[bytes]) -> bytes:
        """Extend the chain by one chunk of ``count`` inputs given as its ``records``, in
        order, in as many parts as the chunk was applied in (a node applies a long chunk a
        slice at a time); the same link as ``extend`` over the whole chunk, since the
        payload is the concatenation of the parts. Returns the new head."""
        seq = self.seq + count
        link = sha256(self.head)
        link.update(seq.to_bytes(8, "big"))
        for part in parts:
            link.update(part)
        self.seq, self.head = seq, link.digest()  # both or neither
        return self.head

    def link(self, msg: Message, result: Result) -> bytes:
        """Extend the chain by one applied input (its canonical line) and its result."""
        return self.extend([encode_message(msg)], [result])
