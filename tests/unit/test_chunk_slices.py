"""A node applies a long chunk a slice at a time: the same messages, the same link."""

from __future__ import annotations

import pytest

from devnet.loggen import generate
from validator.engine import Engine
from validator.engine.codec import encode_message
from validator.engine.hashchain import HashChain
from validator.node.inputlog import SLICE, Chunk, apply_chunk, encode_chunk


def _whole(chunk: Chunk) -> tuple[bytes, bytes]:
    """Head and state root after applying ``chunk`` decoded whole (the node before slices)."""
    engine, chain = Engine(), HashChain()
    lines, msgs = chunk.applied()
    chain.extend(lines, engine.apply_many(msgs))
    return chain.head, engine.state_hash()


def _sliced(chunk: Chunk) -> tuple[bytes, bytes]:
    engine, chain = Engine(), HashChain()
    apply_chunk(engine, chain, chunk)
    return chain.head, engine.state_hash()


@pytest.mark.parametrize("count", [0, 1, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 17])
def test_a_chunk_applied_in_slices_links_and_ends_as_applied_whole(count: int) -> None:
    lines = [encode_message(msg) for msg in generate(count, 3)]
    chunk = Chunk.decode(b"/venue/log/g/1", 9, encode_chunk(lines))
    assert _sliced(chunk) == _whole(chunk)
    pairs = [pair for lines, msgs in chunk.slices() for pair in zip(lines, msgs, strict=True)]
    assert pairs == list(zip(*chunk.applied(), strict=True))


def test_malformed_lines_in_different_slices_are_skipped_as_in_the_whole_chunk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines no gateway writes (one in the first slice, one spaced but valid in the second,
    one in the last) are skipped, or taken, as decoding the whole chunk would, and the
    warning names each skipped line's index in the chunk, not in its slice."""
    lines = [encode_message(msg) for msg in generate(2 * SLICE + 40, 4)]
    lines[5] = b'{"type": "nonsense"}'
    lines[SLICE + 3] = lines[SLICE + 3].replace(b",", b", ", 1)  # not canonical, still valid
    lines[2 * SLICE + 10] = b"not json"
    chunk = Chunk.decode(b"/venue/log/g/2", 11, encode_chunk(lines))
    kept, _ = chunk.applied()
    assert len(kept) == len(lines) - 2 and lines[SLICE + 3] in kept
    caplog.clear()
    sliced = _sliced(chunk)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert sliced == _whole(chunk)
    assert [m.split(":")[0] for m in skipped] == [
        "log revision 11 line 5 skipped",
        f"log revision 11 line {2 * SLICE + 10} skipped",
    ]
