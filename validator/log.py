"""Layout of the replicated input log in etcd.

One key per group-committed chunk: ``/venue/log/<20-digit chunk index>`` (indices from 1). The
value is a header line ``{"first":S}`` (the log sequence of the chunk's first message) followed by
the chunk's messages, one canonical line each; message ``i`` of chunk ``k`` therefore has sequence
``S + i``, the same on every node. A gateway writes chunk ``k`` with a transaction that succeeds
only if the key does not exist yet, so two gateways can never both write the same index.

Nodes publish beside the log: ``/venue/snap/<node>`` (chunk index of the node's newest
snapshot; compaction stays below the minimum over all nodes), ``/venue/roots/<k>/<node>`` (the
state root after chunk ``k`` at a batch boundary) and ``/venue/sigs/<k>/<node>`` (the node's
signature of that settlement batch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from validator.codec import decode_message
from validator.errors import MessageError
from validator.messages import Message

LOG = b"/venue/log/"
SNAP = b"/venue/snap/"
ROOTS = b"/venue/roots/"
SIGS = b"/venue/sigs/"


def chunk_key(index: int) -> bytes:
    return LOG + b"%020d" % index


def chunk_index(key: bytes) -> int:
    return int(key[len(LOG) :])


def roots_prefix(index: int) -> bytes:
    return ROOTS + b"%020d/" % index


def sigs_prefix(index: int) -> bytes:
    return SIGS + b"%020d/" % index


@dataclass(frozen=True, slots=True)
class Chunk:
    """One group-committed transaction of the log."""

    index: int
    first: int
    lines: list[bytes]

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    def encode(self) -> bytes:
        return b"\n".join([json.dumps({"first": self.first}).encode(), *self.lines])

    def messages(self) -> list[Message]:
        return [decode_message(line) for line in self.lines]

    @classmethod
    def decode(cls, index: int, value: bytes) -> Chunk:
        header, *lines = value.split(b"\n")
        try:
            first = json.loads(header)["first"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MessageError(f"chunk {index}: bad header {header[:40]!r}") from exc
        if not isinstance(first, int) or first < 1:
            raise MessageError(f"chunk {index}: bad first sequence {first!r}")
        return cls(index, first, lines)
