"""The log's chunk values: Zstandard frames, and zlib streams (the format before them), read by
one decoder that refuses anything else with the chunk's key, and never inflates beyond the
bound, whatever a frame claims."""

from __future__ import annotations

import zlib

import pytest
import zstandard

from validator.engine.errors import MessageError
from validator.node.inputlog import MAX_CHUNK_BYTES, ZSTD_MAGIC, Chunk, encode_chunk
from validator.node.sequencer import FENCE

LINES = [b'{"account":"a%d","amount":5,"type":"deposit"}' % n for n in range(40)]
KEY = b"/venue/log/g/00000000000000000007"


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_both_formats_decode_to_the_lines_written(compression: str) -> None:
    value = encode_chunk(LINES, compression)  # type: ignore[arg-type]
    assert (value[:4] == ZSTD_MAGIC) == (compression == "zstd")
    chunk = Chunk.decode(KEY, 9, value)
    assert (chunk.key, chunk.revision, chunk.lines) == (KEY, 9, LINES)
    assert Chunk.decode(KEY, 9, encode_chunk([], compression)).lines == []  # type: ignore[arg-type]


def test_zstd_is_the_default() -> None:
    assert encode_chunk(LINES)[:4] == ZSTD_MAGIC


def test_the_fence_is_the_empty_zlib_chunk_every_node_version_reads() -> None:
    assert zlib.compress(b"", 1) == FENCE
    assert Chunk.decode(KEY, 3, FENCE).lines == []


def test_a_value_in_neither_format_is_refused_naming_the_key() -> None:
    with pytest.raises(MessageError, match=r"log key .*00007.*not a zlib chunk"):
        Chunk.decode(KEY, 5, b"{not compressed}")
    with pytest.raises(MessageError, match=r"log key .*00007.*not a Zstandard chunk"):
        Chunk.decode(KEY, 5, ZSTD_MAGIC + b"garbage after the magic")


def test_a_truncated_frame_and_one_followed_by_more_bytes_are_refused() -> None:
    value = encode_chunk(LINES)
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, value[:-5])
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, value + encode_chunk(LINES[:1]))  # a second frame
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, value + b"\n")
    with pytest.raises(MessageError, match="truncated"):
        Chunk.decode(KEY, 5, encode_chunk(LINES, "zlib")[:-5])


def test_a_frame_claiming_more_than_the_bound_is_refused_before_inflating() -> None:
    """A frame's header may state its content size; a larger claim than the bound is refused
    from the header (a 4 MiB value could otherwise claim gigabytes to be allocated)."""
    big = zstandard.ZstdCompressor(level=1).compress(b"\n" * (MAX_CHUNK_BYTES + 1))
    assert zstandard.frame_content_size(big) == MAX_CHUNK_BYTES + 1
    assert len(big) < 64 * 1024  # what such a value costs to write
    with pytest.raises(MessageError, match=f"over {MAX_CHUNK_BYTES}"):
        Chunk.decode(KEY, 5, big)


def test_a_frame_without_its_size_inflates_to_at_most_the_bound() -> None:
    unsized = zstandard.ZstdCompressor(level=1, write_content_size=False)
    assert zstandard.frame_content_size(unsized.compress(b"x")) == -1
    assert Chunk.decode(KEY, 5, unsized.compress(b"\n".join(LINES))).lines == LINES
    big = unsized.compress(b"\n" * (MAX_CHUNK_BYTES + 1))
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, big)


def test_a_frame_with_a_checksum_is_checked() -> None:
    value = bytearray(
        zstandard.ZstdCompressor(level=1, write_checksum=True).compress(b"\n".join(LINES))
    )
    assert Chunk.decode(KEY, 5, bytes(value)).lines == LINES
    value[-1] ^= 1  # the checksum's last byte
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, bytes(value))
