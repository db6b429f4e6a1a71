"""A node's snapshots on disk: a newest one that does not load gives way to the one before, a
temporary file a crash left is removed, and with none loading the error names each file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet.loggen import generate
from validator.engine import Engine
from validator.engine.errors import SnapshotError
from validator.node.snapshot_files import Position, SnapshotStore, sealed


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


@pytest.mark.parametrize(
    "damage", ["header", "body", "seq", "flipped digit", "revision digit", "chain digit"]
)
def test_a_newest_snapshot_that_does_not_load_gives_way_to_the_one_before(
    tmp_path: Path, damage: str
) -> None:
    """Before, one unreadable newest file stopped the node at start-up; a digit changed in the
    body (the header intact) restored a state that was not the one saved; one changed in the
    header's revision or chain head (still valid JSON) resumed the log at another place."""
    store, paths, engines = saved(tmp_path)
    header, _, body = paths[1].read_bytes().partition(b"\n")
    if damage == "header":
        header = b"{not json"
    elif damage == "body":
        body = body[: len(body) // 2]
    elif damage == "flipped digit":  # a bit flipped on disk: a balance, and it still restores
        at = body.index(b'["acct00000",') + len(b'["acct00000",')
        body = body[:at] + bytes([body[at] ^ 2]) + body[at + 1 :]
    elif damage in ("revision digit", "chain digit"):  # a bit flipped in the header
        meta = json.loads(header)
        if damage == "revision digit":
            meta["revision"] ^= 4
        else:
            meta["chain"] = ("1" if meta["chain"][0] != "1" else "2") + meta["chain"][1:]
        header = json.dumps(meta).encode()
    else:  # a sound header whose sequence the state does not confirm (a bug wrote it)
        meta = json.loads(header)
        header = json.dumps(sealed({**meta, "seq": meta["seq"] + 1})).encode()
    paths[1].write_bytes(header + b"\n" + body)
    if damage in ("revision digit", "chain digit"):  # nor is it ever held (published)
        assert store._position(paths[1]) is None
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


def _holding(store: SnapshotStore, k: int, **rule: int) -> Position:
    e = Engine()
    return store.save_holding(
        Position(k, 10 * k, bytes([k % 256]) * 32), e.seq, e.snapshot(), **rule
    )


def _ordinals(store: SnapshotStore) -> list[int]:
    return [int(p.name[5:-4]) for p in sorted(store.directory.glob("snap-*.bin"))]


def test_the_held_snapshot_is_the_newest_at_or_before_the_settled_boundary_and_stays(
    tmp_path: Path,
) -> None:
    """A node with a settler holds (and publishes) the newest snapshot at or before the ledger's
    last committed boundary, kept on disk beside the newest two, so that a peer catching up from
    it replays every batch the ledger lacks; with nothing that old it holds its oldest."""
    store = SnapshotStore(tmp_path)
    rule = {"at_least": 0, "span": 1_000}
    assert _holding(store, 20, hold=0, **rule).ordinal == 20  # the only one
    assert _holding(store, 40, hold=10, **rule).ordinal == 20  # none at or before 10: the oldest
    assert _holding(store, 60, hold=40, **rule) == Position(40, 400, bytes([40]) * 32)
    assert _ordinals(store) == [40, 60]  # 20 is neither held nor among the newest two
    for k in (80, 100, 120):
        assert _holding(store, k, hold=50, at_least=40, span=1_000).ordinal == 40
    assert _ordinals(store) == [40, 100, 120]  # the held one outlives the newest two


def test_the_held_snapshot_never_goes_back_and_gives_way_to_the_newest_past_the_span(
    tmp_path: Path,
) -> None:
    """The held position never goes below the one published before (the committee may have
    compacted the log below it): with no snapshot that recent on disk (an older one restored),
    there is none to hold and the published one stands. The file at the published position stays
    until the next call (a peer may be fetching it until the new position is published). Past
    ``span`` chunks behind the new snapshot the node holds the new one (a chain down for long
    must not keep the whole log in etcd)."""
    store = SnapshotStore(tmp_path)
    for k in (20, 40):
        _holding(store, k, hold=0, at_least=0, span=1_000)
    assert _holding(store, 60, hold=40, at_least=60, span=1_000).ordinal == 60
    assert _ordinals(store) == [40, 60]
    assert (
        store.save_holding(
            Position(30, 300), 0, Engine().snapshot(), hold=100, at_least=200, span=1_000
        )
        is None
    )
    assert _holding(store, 80, hold=100, at_least=60, span=30).ordinal == 80  # newest <= 100
    assert _ordinals(store) == [60, 80]
    assert _holding(store, 100, hold=60, at_least=60, span=30).ordinal == 100  # 60 is 40 behind
    assert _ordinals(store) == [60, 80, 100]  # 60 was published: kept while 100 is published
    assert _holding(store, 120, hold=60, at_least=100, span=30).ordinal == 100
    assert _ordinals(store) == [100, 120]
    assert store.path_at(100) is not None and store.path_at(60) is None
    assert store.latest_ordinal() == 120


def test_a_write_that_fails_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: a failed fsync (EIO) or a full disk left ``snap-N.tmp`` behind, and the
    node now goes on after such a failure, so each one left another file on a filling disk."""
    store, _, _ = saved(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("validator.node.snapshot_files.os.fsync", failing)
    for k in (150, 200):
        with pytest.raises(OSError, match="Input/output error"):
            store.save(Position(k, 10 * k, bytes([k]) * 32), 1, Engine().snapshot())
    assert sorted(p.name for p in tmp_path.iterdir()) == before
