"""Node snapshots on disk: the engine's canonical snapshot plus the log position it covers.

File ``snap-<chunk ordinal>.bin``: a JSON header line
``{"chain":h,"ordinal":k,"revision":r,"seq":s,"sha256":d,"check":c}`` (the hash-chain head
after chunk ``k``, in hex; chunks applied, etcd revision of the last of them, messages applied;
the body's sha256, which is the state root, in hex; and a checksum of the header's other fields)
then the bytes of ``Engine.snapshot()``. A body that does not match its header's sha256, or a
header that does not match its check (a flipped bit on disk: a wrong revision would resume the
log at the wrong place), is refused at load and never served (files written before the
checksums, without them, are taken as they are). Written to a temporary
file, fsynced, renamed, and the directory fsynced (so the rename itself survives a power cut
before the position is published): a crash leaves either the old or the new snapshot, never
half of one; a temporary file it left is removed when the store opens. The newest two are kept,
and a newest one that does not load (a bad header, a damaged body, a sequence the engine does
not confirm, a body the engine refuses) gives way to the one before.

One more may be kept: the snapshot *held* for the committee, whose position the node publishes
(the log is compacted only below every node's published position, and a peer catching up is
given the held snapshot). A node with a settler holds the newest snapshot at or before the
ledger's last committed boundary, so that a peer that catches up replays, and can sign, every
batch the ledger still lacks (``Node._snapshot``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from validator.engine import Engine
from validator.engine.errors import SnapshotError
from validator.engine.hashchain import GENESIS

log = logging.getLogger("validator.node.snapshot_files")


def header_check(meta: dict[str, object]) -> str:
    """The checksum of a snapshot header's fields other than ``check``: sha256 of their
    canonical JSON (keys sorted, no spaces), in hex, first 32 digits."""
    fields = {k: v for k, v in meta.items() if k != "check"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


def sealed(meta: dict[str, object]) -> dict[str, object]:
    """``meta`` with its ``check`` (what a header is written with)."""
    return {**meta, "check": header_check(meta)}


def body_problem(meta: object, body: bytes | memoryview) -> str | None:
    """Why a snapshot is damaged: its header does not match its check, or its body the sha256
    the header gives (None if neither, or if the header has no checksums: written before
    them)."""
    if not isinstance(meta, dict):
        return "the header is not a JSON object"
    check = meta.get("check")
    if check is not None and check != header_check(meta):
        return f"header fields do not match its check {str(check)[:16]}... (damaged)"
    digest = meta.get("sha256")
    if digest is None:
        return None
    actual = hashlib.sha256(body).hexdigest()
    if actual != digest:
        return f"body sha256 {actual[:16]}... is not its header's {str(digest)[:16]}... (damaged)"
    return None


@dataclass(frozen=True, slots=True)
class Position:
    """How far into the log a node is: chunks applied and the revision of the last one."""

    ordinal: int
    revision: int
    chain: bytes = GENESIS
    """Head of the node's hash chain after chunk ``ordinal`` (``validator.engine.hashchain``)."""


class SnapshotStore:
    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("snap-*.tmp"):  # a write a crash cut short
            stale.unlink()

    def save(self, at: Position, seq: int, state: bytes) -> Path:
        """Write ``state`` (``Engine.snapshot()``, taken at ``at``) durably; keep the newest
        ``keep``."""
        path = self._write(at, seq, state)
        for old in sorted(self.directory.glob("snap-*.bin"))[: -self.keep]:
            old.unlink()
        return path

    def save_holding(
        self, at: Position, seq: int, state: bytes, *, hold: int, at_least: int, span: int
    ) -> Position | None:
        """Write ``state`` as ``save`` does and return the position of the snapshot to hold
        (the one the node publishes): the newest at or before chunk ``hold`` among those at or
        after chunk ``at_least`` (the position published before: it never goes back, the log
        below it may be gone), or the oldest of those if none is that old, or the new one if the
        one so found is more than ``span`` chunks behind it; None if none is at or after
        ``at_least`` (the node restored an older snapshot than the one it published): the
        published position stands. Kept: the newest ``keep``, the held one, and the one at
        ``at_least`` (a peer may be fetching it until the new position is published)."""
        path = self._write(at, seq, state)
        files = sorted(self.directory.glob("snap-*.bin"))
        eligible = [(p, f) for f in files if (p := self._position(f)) and p.ordinal >= at_least]
        held: tuple[Position, Path] | None = None
        if eligible:
            before = [e for e in eligible if e[0].ordinal <= hold]
            held = before[-1] if before else eligible[0]
            if at.ordinal - held[0].ordinal > span:
                held = (at, path)
        kept = {*files[-self.keep :], self._file(at_least)}
        if held is not None:
            kept.add(held[1])
        for old in files:
            if old not in kept:
                old.unlink()
        return None if held is None else held[0]

    def _file(self, ordinal: int) -> Path:
        return self.directory / f"snap-{ordinal:020d}.bin"

    def _write(self, at: Position, seq: int, state: bytes) -> Path:
        path = self._file(at.ordinal)
        tmp = path.with_suffix(".tmp")
        header = sealed(
            {
                "chain": at.chain.hex(),
                "ordinal": at.ordinal,
                "revision": at.revision,
                "seq": seq,
                "sha256": hashlib.sha256(state).hexdigest(),
            }
        )
        try:
            with tmp.open("wb") as f:
                f.write(json.dumps(header).encode() + b"\n" + state)
                f.flush()
                os.fsync(f.fileno())
            tmp.rename(path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed write (disk full, EIO) leaves nothing behind
            raise
        self._sync_directory()
        return path

    @staticmethod
    def _position(path: Path) -> Position | None:
        """The position in a snapshot file's header line (None if it cannot be read, or does
        not match its check: a damaged position must not be published as the held one)."""
        try:
            with path.open("rb") as f:
                meta = json.loads(f.readline())
            check = meta.get("check")
            if check is not None and check != header_check(meta):
                return None
            return Position(
                int(meta["ordinal"]), int(meta["revision"]), bytes.fromhex(meta["chain"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def path_at(self, ordinal: int | None) -> Path | None:
        """The snapshot file at chunk ``ordinal`` (None if it is not here), or with ``ordinal``
        None the newest (None if there is none)."""
        if ordinal is None:
            return self.latest()
        path = self._file(ordinal)
        return path if path.exists() else None

    def latest_ordinal(self) -> int:
        """The chunk of the newest snapshot file (0 if there is none)."""
        for path in sorted(self.directory.glob("snap-*.bin"), reverse=True):
            if path.name[5:-4].isdigit():  # a stray file is none of ours
                return int(path.name[5:-4])
        return 0

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def set_aside(self, why: str) -> Path:
        """Move every snapshot to a new sibling directory ``<dir>.diverged-<UTC time>`` with a
        ``WHY`` file saying ``why`` (kept for a person to examine, never read again) and go on
        with an empty directory; the new directory's path."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.directory.with_name(f"{self.directory.name}.diverged-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.directory.with_name(f"{self.directory.name}.diverged-{stamp}-{n}")
        self.directory.rename(target)
        (target / "WHY").write_text(why + "\n")
        self.directory.mkdir()
        fd = os.open(self.directory.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    def latest(self) -> Path | None:
        files = sorted(self.directory.glob("snap-*.bin"))
        return files[-1] if files else None

    def load_latest(self) -> tuple[Position, Engine] | None:
        """(position, engine) of the newest snapshot that loads, or None if there is none;
        SnapshotError (naming each file and why) if there are some and none loads."""
        refused = []
        for path in sorted(self.directory.glob("snap-*.bin"), reverse=True):
            try:
                return self._load(path)
            except SnapshotError as exc:
                log.error("snapshot %s unusable, trying the one before: %s", path, exc)
                refused.append(f"{path.name}: {exc}")
        if refused:
            raise SnapshotError("no snapshot loads: " + "; ".join(refused))
        return None

    def _load(self, path: Path) -> tuple[Position, Engine]:
        header, _, body = path.read_bytes().partition(b"\n")
        try:
            meta = json.loads(header)
            chain = bytes.fromhex(meta["chain"])
            at = Position(int(meta["ordinal"]), int(meta["revision"]), chain)
            seq = int(meta["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"bad header {header[:80]!r}") from exc
        problem = body_problem(meta, body)
        if problem is not None:
            raise SnapshotError(problem)
        engine = Engine.restore(body)
        if engine.seq != seq:
            raise SnapshotError(f"header says seq {seq}, the state holds {engine.seq}")
        return at, engine
