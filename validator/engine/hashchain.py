"""Running hash chain over the input log and its results: a cheap commitment per input.

    h_0 = sha256("dc-redundancy/validator/chain/v1")
    h_n = sha256(h_{n-1} || n as 8 bytes big-endian
                 || canonical(input_n) || "\\n" || canonical(result_n))

Its cost is one small encode and one sha256 per input, independent of the
size of the state, so a validator can publish ``h_n`` after *every* input. Two
validators that applied the same log and produced the same results have the
same ``h_n``. Because the engine is deterministic, equal ``h_n`` also means
equal state; the full-state root (``Engine.state_hash``, sha256 of the
canonical snapshot) proves it directly and is computed at checkpoints.
"""

from __future__ import annotations

from hashlib import sha256

from validator.engine.codec import encode_message, encode_result
from validator.engine.messages import Message
from validator.engine.results import Result

GENESIS = sha256(b"dc-redundancy/validator/chain/v1").digest()
"""``h_0``: the head before any input."""


class HashChain:
    """The chain head ``h_n`` after input ``seq`` = n."""

    __slots__ = ("head", "seq")

    def __init__(self, seq: int = 0, head: bytes = GENESIS) -> None:
        self.seq = seq
        self.head = head

    def link(self, msg: Message, result: Result) -> bytes:
        """Extend the chain by one applied input and its result; return the new head."""
        self.seq += 1
        self.head = sha256(
            self.head
            + self.seq.to_bytes(8, "big")
            + encode_message(msg)
            + b"\n"
            + encode_result(result)
        ).digest()
        return self.head
