"""A node's snapshots on disk: a newest one that does not load gives way to the one before, a
temporary file a crash left is removed, and with none loading the error names each file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet.loggen import generate
from validator.engine import Engine
from validator.engine.errors import SnapshotError
from validator.node.snapshot_files import Position, SnapshotStore


def engine_after(count: int) -> Engine:
    engine = Engine()
    for seq, msg in enumerate(generate(count, 3), 1):
        engine.apply_at(seq, msg)
    return engine


def saved(tmp_path: Path) -> tuple[SnapshotStore, list[Path], list[Engine]]:
    store = SnapshotStore(tmp_path)
    engines = [engine_after(200), engine_after(400)]
    paths = [
        store.save(Position(k, 10 * k, bytes([k]) * 32), e.seq, e.snapshot())
        for k, e in ((50, engines[0]), (100, engines[1]))
    ]
    return store, paths, engines


def test_the_newest_snapshot_is_loaded(tmp_path: Path) -> None:
    store, _, engines = saved(tmp_path)
    found = store.load_latest()
    assert found is not None
    at, engine = found
    assert at == Position(100, 1000, bytes([100]) * 32)
    assert engine.state_hash() == engines[1].state_hash()


@pytest.mark.parametrize("damage", ["header", "body", "seq"])
def test_a_newest_snapshot_that_does_not_load_gives_way_to_the_one_before(
    tmp_path: Path, damage: str
) -> None:
    """Before, one unreadable newest file stopped the node at start-up."""
    store, paths, engines = saved(tmp_path)
    header, _, body = paths[1].read_bytes().partition(b"\n")
    if damage == "header":
        header = b"{not json"
    elif damage == "body":
        body = body[: len(body) // 2]
    else:  # a header whose sequence the state does not confirm
        meta = json.loads(header)
        header = json.dumps({**meta, "seq": meta["seq"] + 1}).encode()
    paths[1].write_bytes(header + b"\n" + body)
    found = store.load_latest()
    assert found is not None
    at, engine = found
    assert at.ordinal == 50
    assert engine.state_hash() == engines[0].state_hash()


def test_with_no_snapshot_loading_the_error_names_each(tmp_path: Path) -> None:
    _, paths, _ = saved(tmp_path)
    for path in paths:
        path.write_bytes(b"garbage")
    with pytest.raises(SnapshotError) as refused:
        SnapshotStore(tmp_path).load_latest()
    assert all(path.name in str(refused.value) for path in paths)


def test_a_temporary_file_a_crash_left_is_removed_and_never_loaded(tmp_path: Path) -> None:
    _, paths, _ = saved(tmp_path)
    stale = tmp_path / "snap-00000000000000000150.tmp"
    stale.write_bytes(b"half a snapshot")
    store = SnapshotStore(tmp_path)
    assert not stale.exists()
    found = store.load_latest()
    assert found is not None and found[0].ordinal == 100
    assert sorted(tmp_path.iterdir()) == paths
