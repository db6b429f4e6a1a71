"""Node snapshots on disk: the engine's canonical snapshot plus the log position it covers.

File ``snap-<chunk ordinal>.bin``: a JSON header line
``{"chain":h,"ordinal":k,"revision":r,"seq":s}`` (the hash-chain head after chunk ``k``, in hex;
chunks applied, etcd revision of the last of them, messages applied) then the bytes of
``Engine.snapshot()``. Written to a temporary file, fsynced, renamed: a crash leaves either the
old or the new snapshot, never half of one. The newest two are kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from validator.engine import Engine
from validator.engine.errors import SnapshotError
from validator.engine.hashchain import GENESIS


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

    def save(self, at: Position, seq: int, state: bytes) -> Path:
        """Write ``state`` (``Engine.snapshot()``, taken at ``at``) durably."""
        path = self.directory / f"snap-{at.ordinal:020d}.bin"
        tmp = path.with_suffix(".tmp")
        header = {
            "chain": at.chain.hex(),
            "ordinal": at.ordinal,
            "revision": at.revision,
            "seq": seq,
        }
        with tmp.open("wb") as f:
            f.write(json.dumps(header).encode() + b"\n" + state)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
        for old in sorted(self.directory.glob("snap-*.bin"))[: -self.keep]:
            old.unlink()
        return path

    def latest(self) -> Path | None:
        files = sorted(self.directory.glob("snap-*.bin"))
        return files[-1] if files else None

    def load_latest(self) -> tuple[Position, Engine] | None:
        """(position, engine) of the newest snapshot, or None if there is none."""
        path = self.latest()
        if path is None:
            return None
        header, _, body = path.read_bytes().partition(b"\n")
        try:
            meta = json.loads(header)
            chain = bytes.fromhex(meta["chain"])
            at = Position(int(meta["ordinal"]), int(meta["revision"]), chain)
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{path}: bad header {header[:80]!r}") from exc
        return at, Engine.restore(body)
