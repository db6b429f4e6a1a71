"""Node snapshots on disk: the engine's canonical snapshot plus the log position it covers.

File ``snap-<chunk index>.bin``: a JSON header line ``{"index":k,"seq":s}`` then the bytes of
``Engine.snapshot()``. Written to a temporary file, fsynced, renamed: a crash leaves either the
old or the new snapshot, never half of one. The newest two are kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from validator.engine import Engine


class SnapshotStore:
    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, index: int, engine: Engine) -> Path:
        path = self.directory / f"snap-{index:020d}.bin"
        tmp = path.with_suffix(".tmp")
        header = json.dumps({"index": index, "seq": engine.seq}).encode()
        with tmp.open("wb") as f:
            f.write(header + b"\n" + engine.snapshot())
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
        for old in sorted(self.directory.glob("snap-*.bin"))[: -self.keep]:
            old.unlink()
        return path

    def load_latest(self) -> tuple[int, Engine] | None:
        """(chunk index, engine) of the newest snapshot, or None if there is none."""
        files = sorted(self.directory.glob("snap-*.bin"))
        if not files:
            return None
        header, _, body = files[-1].read_bytes().partition(b"\n")
        index = int(json.loads(header)["index"])
        return index, Engine.restore(body)
