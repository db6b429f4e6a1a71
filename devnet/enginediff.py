"""The compiled engine and the pure-Python reference, side by side on the same log.

    enginediff.py LOG [--every N] [--batch N]

Each implementation runs in its own worker process (``VALIDATOR_ENGINE=pure`` and
``=compiled``: one process cannot hold both, they are the same modules). The log is streamed to
both in batches; after each batch the canonical result line of every input and the full state
hash at every ``N``-th input must be identical, or the tool names the first input where they
differ and exits 1. A worker that cannot load the implementation it was asked for (say, the
compiled build is missing or older than its sources) is an error, exit 2: the comparison never
quietly runs the reference twice.

``tests/unit/test_engine_builds.py`` drives the same workers from Hypothesis and on a long
generated log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import IO, Any

IMPLEMENTATIONS = ("pure", "compiled")


class WorkerError(RuntimeError):
    """Raised when a worker cannot run the implementation asked for, or dies."""


@dataclass(frozen=True)
class Outcome:
    """What one implementation did with a batch of lines."""

    implementation: str
    results: list[str]
    """The canonical result line of every input, in order."""
    hashes: list[tuple[int, str]]
    """``(seq, state hash)`` after every ``every``-th input, and after the batch's last one."""


class Worker:
    """One engine implementation in a child process, fed batches of log lines."""

    def __init__(self, implementation: str) -> None:
        env = {**os.environ, "VALIDATOR_ENGINE": implementation}
        self.implementation = implementation
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devnet.enginediff", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    def run(self, lines: Sequence[bytes], *, every: int = 0, reset: bool = False) -> Outcome:
        """Apply ``lines`` (after a fresh engine if ``reset``) and report what happened."""
        request = {"lines": [line.decode() for line in lines], "every": every, "reset": reset}
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            answer = stdout.readline()
        except BrokenPipeError:
            answer = b""
        if not answer:
            raise WorkerError(f"{self.implementation} worker died: {self._stderr()}")
        reply: dict[str, Any] = json.loads(answer)
        if "error" in reply:
            raise WorkerError(f"{self.implementation} worker: {reply['error']}")
        if reply["implementation"] != self.implementation:
            raise WorkerError(
                f"asked for the {self.implementation} engine, the worker runs "
                f"{reply['implementation']}"
            )
        hashes = [(int(seq), str(digest)) for seq, digest in reply["hashes"]]
        return Outcome(reply["implementation"], reply["results"], hashes)

    def _stderr(self) -> str:
        """The last line the dead worker wrote to stderr."""
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        lines = err.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self.process.returncode}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


def first_difference(a: Outcome, b: Outcome, offset: int = 0) -> str | None:
    """Where two outcomes of the same batch first differ, or None if they are identical."""
    for i, (x, y) in enumerate(zip(a.results, b.results, strict=True)):
        if x != y:
            return (
                f"input {offset + i + 1}: {a.implementation} gave {x}, {b.implementation} gave {y}"
            )
    for (seq, x), (_, y) in zip(a.hashes, b.hashes, strict=True):
        if x != y:
            return f"state hash after input {seq}: {a.implementation} {x}, {b.implementation} {y}"
    return None


def batches(path: Path, size: int) -> Iterator[list[bytes]]:
    with path.open("rb") as log:
        batch: list[bytes] = []
        for raw in log:
            batch.append(raw.rstrip(b"\r\n"))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def compare(path: Path, *, every: int, batch: int) -> tuple[int, int, str | None]:
    """(inputs, checkpoints, first difference or None) of both engines on the log at ``path``."""
    workers = [Worker(name) for name in IMPLEMENTATIONS]
    inputs = checkpoints = 0
    try:
        for lines in batches(path, batch):
            pure, compiled = (w.run(lines, every=every, reset=not inputs) for w in workers)
            difference = first_difference(pure, compiled, inputs)
            if difference is not None:
                return inputs, checkpoints, difference
            inputs += len(lines)
            checkpoints += len(pure.hashes)
    finally:
        for worker in workers:
            worker.close()
    return inputs, checkpoints, None


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The worker: one JSON request per line in, one JSON reply per line out."""
    try:
        from validator.engine import IMPLEMENTATION, Engine
        from validator.engine.codec import decode_message, encode_result
    except ImportError as exc:  # EngineBuildError: the build asked for cannot be loaded
        stdout.write(json.dumps({"error": str(exc)}).encode() + b"\n")
        stdout.flush()
        return 2
    engine = Engine()
    for request_line in stdin:
        request = json.loads(request_line)
        if request["reset"]:
            engine = Engine()
        every = request["every"]
        results, hashes = [], []
        try:
            for line in request["lines"]:
                result = engine.apply(decode_message(line.encode()))
                results.append(encode_result(result).decode())
                if every and engine.seq % every == 0:
                    hashes.append((engine.seq, checked_hash(engine)))
            if not hashes or hashes[-1][0] != engine.seq:
                hashes.append((engine.seq, checked_hash(engine)))
        except ValueError as exc:  # a malformed line (MessageError), or a kept snapshot's fault
            reply: dict[str, Any] = {"error": f"input {engine.seq + 1}: {exc}"}
        else:
            reply = {"implementation": IMPLEMENTATION, "results": results, "hashes": hashes}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()
    return 0


def checked_hash(engine: Any) -> str:
    """The engine's state hash, after checking that the snapshot it hashes (kept up to date part
    by part between hashes) is the one written from scratch; ``ValueError`` if not."""
    from validator.engine import snapshot

    digest: bytes = engine.state_hash()
    if digest != sha256(snapshot.dump_from_scratch(engine._state)).digest():
        raise ValueError("the snapshot kept up to date differs from the one written from scratch")
    return digest.hex()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="enginediff.py",
        description="Run the compiled and the pure-Python engine side by side on a log.",
    )
    parser.add_argument("log", type=Path, nargs="?", help="input log: one JSON message per line")
    parser.add_argument("--every", type=int, default=1000, metavar="N", help="state hash every N")
    parser.add_argument("--batch", type=int, default=20_000, metavar="N", help="lines per batch")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    if args.log is None:
        parser.error("a log file is required")
    try:
        inputs, checkpoints, difference = compare(args.log, every=args.every, batch=args.batch)
    except (WorkerError, OSError) as exc:
        print(f"enginediff: {exc}", file=sys.stderr)
        return 2
    if difference is not None:
        print(f"enginediff: DIFFERENT at {difference}", file=sys.stderr)
        return 1
    print(
        f"identical: {inputs} inputs, every result and {checkpoints} state hashes "
        f"(pure and compiled)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
