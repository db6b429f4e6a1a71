"""Layout of the replicated input log in etcd.

The log is every key under ``/venue/log/`` in the order etcd committed them: etcd's Raft gives
each write a revision, the same on every member, so that order is the total order of the venue's
inputs. Each gateway writes its own keys, ``/venue/log/<gateway>/<20-digit counter>``, with a
transaction that succeeds only if the key does not exist yet: gateways never contend for a key,
several writes can be in flight at once, and a gateway that retries a write it is unsure of
learns whether it landed (the key holds exactly its value) instead of logging it twice.

A key's value is one group-committed chunk: the chunk's messages, one canonical line each,
joined by newlines and compressed as one Zstandard frame (canonical lines of the same venue
compress about 8:1, and the bytes etcd replicates, fsyncs and streams to every node are its
main cost). A value that does not start with Zstandard's magic number is read as a zlib stream,
the format before it (``log_compression``: a gateway writes zlib during a rolling upgrade from a
version whose nodes read only zlib).

A message's place is its *position*: (revision of its chunk, index in the chunk), which the
gateway acknowledges. Nodes apply chunks in revision order and number messages from 1, so a
message's sequence number is the same on every node; chunk *ordinals* (1, 2, ... in revision
order) mark batch boundaries and snapshots.

Nodes publish beside the log: ``/venue/snap/<node>`` (``"<ordinal> <revision>"`` of the snapshot the
node holds for the committee: its newest, or with a settler the newest at or before the ledger's
last commit; compaction stays below the minimum over all nodes), ``/venue/roots/<k>/<node>``
(the state root after chunk ordinal ``k`` at a batch boundary) and ``/venue/sigs/<k>/<node>``
(the node's signature of that settlement batch).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import zstandard

from validator.engine import Engine
from validator.engine.codec import decode_lines, decode_message
from validator.engine.errors import MessageError
from validator.engine.hashchain import HashChain, records
from validator.engine.messages import Message

LOG = b"/venue/log/"
SNAP = b"/venue/snap/"
ROOTS = b"/venue/roots/"
SIGS = b"/venue/sigs/"
FLOOR = b"/venue/floor/"

log = logging.getLogger("validator.node.inputlog")

MAX_CHUNK_BYTES = 64 * 1024 * 1024
"""Largest decompressed chunk a node accepts (a compressed value is at most etcd's 4 MiB)."""

Compression = Literal["zstd", "zlib"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
"""The first four bytes of a Zstandard frame. No zlib stream starts with them (a zlib header's
two bytes, read as one number, are a multiple of 31, and 0x28b5 is not), so which format a value
is in is never ambiguous, and every value an older node took as zlib is still read as zlib."""

_contexts = threading.local()
"""Each thread's Zstandard compressor and decompressor (neither may be used by two threads at
once; making one per chunk costs more than compressing a small chunk)."""


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    try:
        return _contexts.pair  # type: ignore[no-any-return]
    except AttributeError:
        _contexts.pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
        return _contexts.pair  # type: ignore[no-any-return]


def gateway_prefix(gateway: str) -> bytes:
    if not gateway or "/" in gateway:
        raise ValueError(f"gateway id {gateway!r} must be non-empty and contain no '/'")
    return LOG + gateway.encode() + b"/"


def chunk_key(gateway: str, counter: int) -> bytes:
    return gateway_prefix(gateway) + counter_bytes(counter)


def key_counter(key: bytes) -> int:
    return int(key.rsplit(b"/", 1)[1])


def floor_key(gateway: str) -> bytes:
    """Where the highest counter of ``gateway``'s chunk keys that compaction may have deleted is
    kept (``counter_bytes``); a chunk write goes through only above it."""
    gateway_prefix(gateway)  # the same rules for the id
    return FLOOR + gateway.encode()


def counter_bytes(counter: int) -> bytes:
    """A key counter as the floor holds it: 20 digits, so bytes order is number order."""
    return b"%020d" % counter


def roots_prefix(ordinal: int) -> bytes:
    return ROOTS + b"%020d/" % ordinal


def sigs_prefix(ordinal: int) -> bytes:
    return SIGS + b"%020d/" % ordinal


def encode_chunk(lines: list[bytes], compression: Compression = "zstd") -> bytes:
    """A chunk's value: ``lines`` joined by newlines, compressed (Zstandard level 1, its frame
    holding the content size; or zlib level 1)."""
    text = b"\n".join(lines)
    if compression == "zstd":
        return _zstd()[0].compress(text)
    return zlib.compress(text, 1)


SLICE = 512
"""Lines a node decodes and applies at a time. A chunk of thousands of lines (a gateway under
load from large requests) decoded whole leaves its messages and their results out of the
CPU's caches by the time they are applied and hashed: per input, a 5,000-line chunk cost 2.05
us whole and 1.67 us in slices of 256 to 1,024 (the same flow, ``bench/bench_nodes.py``'s
orders); a 1,000-line chunk costs the same either way."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One group-committed write of the log, at its etcd revision."""

    key: bytes
    revision: int
    lines: list[bytes]

    def messages(self) -> list[Message]:
        """The chunk's messages (see ``applied``)."""
        return self.applied()[1]

    def applied(self) -> tuple[list[bytes], list[Message]]:
        """(lines, messages) of the chunk's well-formed lines, in order. The whole chunk is
        decoded by one msgspec call (``codec.decode_lines``, the fast path); if any line needs
        the reference decoder, every line is decoded on its own and a malformed one (never
        written by a gateway) is skipped, the same way on every node, and logged."""
        return self._decoded(self.lines, 0)

    def slices(self, size: int = SLICE) -> Iterator[tuple[list[bytes], list[Message]]]:
        """``applied`` a slice of ``size`` lines at a time: together the same (line, message)
        pairs in the same order (each line is taken or skipped on its own merits, whatever it
        is decoded with: ``codec.decode_lines`` takes a line only as the reference would, and
        which other lines it is decoded with does not change that), each slice decoded by one
        msgspec call."""
        for start in range(0, len(self.lines), size):
            yield self._decoded(self.lines[start : start + size], start)

    def _decoded(self, lines: list[bytes], first: int) -> tuple[list[bytes], list[Message]]:
        """``lines`` (from line ``first`` of the chunk on) decoded, as ``applied`` says."""
        msgs = decode_lines(lines)
        if msgs is not None:
            return lines, msgs
        kept, out = [], []
        for i, line in enumerate(lines, first):
            try:
                out.append(decode_message(line))
            except MessageError as exc:
                log.warning("log revision %d line %d skipped: %s", self.revision, i, exc)
                continue
            kept.append(line)
        return kept, out

    @classmethod
    def decode(cls, key: bytes, revision: int, value: bytes) -> Chunk:
        """Raise ``MessageError`` naming the key if ``value`` is not one compressed chunk: a
        Zstandard frame (nothing after it) or a zlib stream, inflating to at most
        ``MAX_CHUNK_BYTES``."""
        text = _inflate_zstd(key, value) if value[:4] == ZSTD_MAGIC else _inflate_zlib(key, value)
        return cls(key, revision, text.split(b"\n") if text else [])


def _inflate_zstd(key: bytes, value: bytes) -> bytes:
    """One Zstandard frame holding its content size (as every gateway writes it), at most
    ``MAX_CHUNK_BYTES``, decoded whole to exactly that size, nothing after it. The checks are
    this function's own, not a library's shortcuts: python-zstandard's one-shot ``decompress``
    returns nothing for a frame that says it is empty whatever follows, and ignores bytes after
    a frame without its size in its C backend but not in its cffi one, so which of two nodes
    took such a value would have depended on their installations."""
    try:
        size = zstandard.frame_content_size(value)
        if size < 0:
            raise MessageError(f"log key {key!r}: a Zstandard frame without its content size")
        if size > MAX_CHUNK_BYTES:  # the frame's own claim, checked before anything is allocated
            raise MessageError(f"log key {key!r}: a chunk of {size} bytes, over {MAX_CHUNK_BYTES}")
        inflater = _zstd()[1].decompressobj()
        text = inflater.decompress(value)
    except zstandard.ZstdError as exc:
        raise MessageError(f"log key {key!r}: not a Zstandard chunk ({exc})") from None
    if not inflater.eof or inflater.unused_data or len(text) != size:
        raise MessageError(
            f"log key {key!r}: not one whole Zstandard frame of {size} bytes "
            f"({len(text)} bytes decoded, {len(inflater.unused_data)} bytes after it)"
        )
    return text


def _inflate_zlib(key: bytes, value: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(value, MAX_CHUNK_BYTES)
    except zlib.error as exc:
        raise MessageError(f"log key {key!r}: not a zlib chunk ({exc})") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise MessageError(f"log key {key!r}: truncated, or over {MAX_CHUNK_BYTES} bytes")
    return text


def apply_chunk(engine: Engine, chain: HashChain, chunk: Chunk) -> None:
    """Apply a chunk of the log to ``engine`` and link it into ``chain``: what a node does with
    every chunk. A slice at a time (``SLICE``); the link is the one ``HashChain.extend`` makes
    over the whole chunk (its payload is the slices' records, concatenated)."""
    parts, count = [], 0
    for lines, msgs in chunk.slices():
        parts.append(records(lines, engine.apply_many(msgs)))
        count += len(lines)
    chain.extend_records(count, parts)
