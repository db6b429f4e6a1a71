"""The log's chunk values: Zstandard frames, and zlib streams (the format before them), read by
one decoder that refuses anything else with the chunk's key, and never inflates beyond the
bound, whatever a frame claims."""

from __future__ import annotations

import os
import random
import subprocess
import sys
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
    with pytest.raises(MessageError, match="Zstandard"):
        Chunk.decode(KEY, 5, value[:-5])
    with pytest.raises(MessageError, match="Zstandard"):
        Chunk.decode(KEY, 5, value + encode_chunk(LINES[:1]))  # a second frame
    with pytest.raises(MessageError, match="Zstandard"):
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


def test_a_frame_without_its_size_is_refused_whatever_follows_it() -> None:
    """Gateways write the size; without it, python-zstandard's C backend took bytes after the
    frame and its cffi backend did not, so such a value is refused outright."""
    unsized = zstandard.ZstdCompressor(level=1, write_content_size=False)
    assert zstandard.frame_content_size(unsized.compress(b"x")) == -1
    for value in (unsized.compress(b"\n".join(LINES)), unsized.compress(b"a\nb") + b"JUNK"):
        with pytest.raises(MessageError, match="without its content size"):
            Chunk.decode(KEY, 5, value)


def test_a_frame_that_says_it_is_empty_is_refused_if_anything_follows() -> None:
    """The library's one-shot decoder returns nothing for such a frame, without reading on."""
    assert Chunk.decode(KEY, 5, encode_chunk([])).lines == []
    with pytest.raises(MessageError, match="0 bytes decoded, 8 bytes after it"):
        Chunk.decode(KEY, 5, encode_chunk([]) + b"anything")
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, ZSTD_MAGIC + b"\x20\x00" + bytes(range(100)))


def test_a_frame_with_a_checksum_is_checked() -> None:
    value = bytearray(
        zstandard.ZstdCompressor(level=1, write_checksum=True).compress(b"\n".join(LINES))
    )
    assert Chunk.decode(KEY, 5, bytes(value)).lines == LINES
    value[-1] ^= 1  # the checksum's last byte
    with pytest.raises(MessageError, match="not a Zstandard chunk"):
        Chunk.decode(KEY, 5, bytes(value))


MUTATED = 4_000

_DECODE_ALL = """
import sys
import zstandard
from validator.engine.errors import MessageError
from validator.node.inputlog import Chunk
print(zstandard.backend)
for line in sys.stdin:
    try:
        print(repr(Chunk.decode(b"k", 1, bytes.fromhex(line.strip())).lines))
    except MessageError:
        print("refused")
"""


def _mutations() -> list[bytes]:
    rng = random.Random(17)
    sized = encode_chunk(LINES)
    unsized = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(
        b"\n".join(LINES)
    )
    out = []
    for n in range(MUTATED):
        value = bytearray(rng.choice((sized, unsized, encode_chunk([]), encode_chunk(LINES[:3]))))
        kind = n % 4
        if kind == 0:  # flip bits
            for _ in range(rng.randint(1, 3)):
                value[rng.randrange(4, len(value))] ^= 1 << rng.randrange(8)
        elif kind == 1:  # cut
            del value[rng.randrange(4, len(value) + 1) :]
        elif kind == 2:  # append
            value += rng.randbytes(rng.randint(1, 12))
        else:  # a frame header byte
            value[4 + rng.randrange(min(6, len(value) - 4))] = rng.randrange(256)
        out.append(bytes(value))
    return out


@pytest.mark.parametrize("policy", ["cext", "cffi"])
def test_both_zstandard_backends_take_and_refuse_the_same_values(policy: str) -> None:
    """Which backend python-zstandard loads depends on the installation and the environment;
    nodes with different ones must take the same values, as the same lines."""
    values = _mutations()
    expected = []
    for value in values:
        try:
            expected.append(repr(Chunk.decode(b"k", 1, value).lines))
        except MessageError:
            expected.append("refused")
    assert 0 < expected.count("refused") < len(values)  # both kinds among the mutations
    env = {**os.environ, "PYTHON_ZSTANDARD_IMPORT_POLICY": policy}
    got = subprocess.run(
        [sys.executable, "-c", _DECODE_ALL],
        input="\n".join(v.hex() for v in values),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.splitlines()
    assert got[0] == policy
    assert got[1:] == expected
