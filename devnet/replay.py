"""Replay tool: apply an input log file and print the final state hash and a summary.

    replay.py LOG [--every N] [--snapshot-out FILE] [--verify-snapshot] [--json]

One message per line in the canonical line format (``codec.py``); make one with
``genlog.py``. The tool prints the per-input hash chain head and the full-state
root (sha256 of the canonical snapshot). Bad input - a missing file, a
malformed line - is reported as one line naming the file and line number, with
exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from validator.engine import Engine
from validator.engine.codec import decode_message
from validator.engine.errors import LogError, MessageError
from validator.engine.hashchain import HashChain
from validator.engine.messages import Deposit, Withdraw


def replay(
    path: Path, *, every: int = 0, out: list[str] | None = None
) -> tuple[Engine, dict[str, object]]:
    """Apply every line of the log at ``path``; return the engine and a summary.

    With ``every``, the state hash and the chain head after every ``every``-th input are appended
    to ``out`` (equal chain heads: every result so far was the same).
    """
    engine, chain = Engine(), HashChain()
    reasons: Counter[str] = Counter()
    fills = contracts = payouts = deposits = withdrawals = 0
    try:
        log = path.open("rb")
    except OSError as exc:
        raise LogError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    with log:
        for number, raw in enumerate(log, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                raise LogError(str(path), number, "empty line")
            try:
                msg = decode_message(line)
            except MessageError as exc:
                raise LogError(str(path), number, str(exc)) from None
            result = engine.apply(msg)
            chain.link(msg, result)
            if every and out is not None and engine.seq % every == 0:
                out.append(f"{engine.seq:>10}  {engine.state_hash().hex()}  {chain.head.hex()}")
            if result.reason is not None:
                reasons[result.reason.value] += 1
                continue
            fills += len(result.fills)
            contracts += sum(fill.qty for fill in result.fills)
            payouts += len(result.payouts)
            if isinstance(msg, Deposit):
                deposits += msg.amount
            elif isinstance(msg, Withdraw):
                withdrawals += msg.amount
    counts = engine.counts()
    summary: dict[str, object] = {
        "log": str(path),
        "inputs": engine.seq,
        "accepted": engine.seq - sum(reasons.values()),
        "rejected": dict(sorted(reasons.items())),
        "fills": fills,
        "contracts_traded": contracts,
        "payouts": payouts,
        **counts,
        "total_cash": engine.total_cash(),
        "deposits_minus_withdrawals": deposits - withdrawals,
        "chain_head": chain.head.hex(),
        "state_hash": engine.state_hash().hex(),
    }
    return engine, summary


def _print_summary(summary: dict[str, object]) -> None:
    rejected = summary["rejected"]
    assert isinstance(rejected, dict)
    rows = [
        ("log", summary["log"]),
        ("inputs", summary["inputs"]),
        ("accepted", summary["accepted"]),
        ("rejected", sum(rejected.values())),
        *((f"  {reason}", count) for reason, count in rejected.items()),
        ("fills", f"{summary['fills']} ({summary['contracts_traded']} contracts)"),
        ("payouts", summary["payouts"]),
        ("accounts", summary["accounts"]),
        ("series", f"{summary['series']} ({summary['trading_series']} trading)"),
        ("resting orders", summary["resting_orders"]),
        ("total cash", summary["total_cash"]),
        (
            "  conserved",
            "yes" if summary["total_cash"] == summary["deposits_minus_withdrawals"] else "NO",
        ),
        ("chain head", summary["chain_head"]),
        ("state hash", summary["state_hash"]),
    ]
    for name, value in rows:
        print(f"{name:<26}{value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/replay.py``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="replay.py", description="Apply an input log and print the final state hash."
    )
    parser.add_argument("log", type=Path, help="input log: one JSON message per line")
    parser.add_argument(
        "--every",
        type=int,
        default=0,
        metavar="N",
        help="also print the state hash and chain head after every N inputs",
    )
    parser.add_argument(
        "--snapshot-out", type=Path, metavar="FILE", help="write the final snapshot to FILE"
    )
    parser.add_argument(
        "--verify-snapshot",
        action="store_true",
        help="check that the final snapshot restores to the same state hash",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    checkpoints: list[str] = []
    try:
        engine, summary = replay(args.log, every=max(args.every, 0), out=checkpoints)
    except LogError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    snapshot = engine.snapshot()
    if args.verify_snapshot:
        restored = Engine.restore(snapshot)
        summary["snapshot_restores"] = restored.state_hash() == engine.state_hash()
    if args.snapshot_out is not None:
        try:
            args.snapshot_out.write_bytes(snapshot)
        except OSError as exc:
            print(
                f"replay: cannot write {args.snapshot_out}: {exc.strerror or exc}", file=sys.stderr
            )
            return 2
    if args.json:
        print(json.dumps({**summary, "checkpoints": checkpoints}, indent=2))
    else:
        for line in checkpoints:
            print(line)
        _print_summary(summary)
        if args.verify_snapshot:
            restores = "yes" if summary["snapshot_restores"] else "NO"
            print(f"{'snapshot restores':<26}{restores}")
    return 0 if summary.get("snapshot_restores", True) else 1
