"""The checker: does a run's history agree with the log the venue committed?

Input (``RunRecord``): every client attempt (``devnet.history.Op``), the whole committed log
read after the faults healed and the venue quiesced, every state root each node published at a
batch boundary, each node's final state, and the windows in which the nemesis had cut sites off
from a quorum. The checker replays the log through the engine the way every node does, and
checks, naming every violation:

- **lost**: every acknowledged message is in the log at the position its ack gave;
- **duplicates**: no gateway logged a message more often than attempts through it could have
  landed (acknowledged or unknown), and no message took effect twice (the engine accepted at
  most one copy; a message without a client order id is in the log at most once);
- **lies**: no message a gateway refused for good (503 ``refused``) is in that gateway's log;
- **phantoms**: nothing is in the log that no client sent;
- **unknown outcomes**: counted, and how they resolved (logged or not; at most once in effect);
- **nodes**: every node's roots equal the replay's at every batch boundary (its applied
  sequence is a prefix of the one sequence), and at the end every node holds the replay's state;
- **split brain**: no gateway acknowledged a request it received and answered entirely while
  its site was cut off from a quorum.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from devnet.history import Op
from validator.engine import Engine
from validator.node.inputlog import LOG, Chunk


@dataclass
class Window:
    """A stretch in which the nemesis had ``minority`` cut off from a quorum."""

    kind: str
    start: float
    end: float
    minority: list[str]


@dataclass
class RunRecord:
    seed: int
    run: int
    schedule: list[dict[str, Any]]
    sites: list[str]
    batch_every: int
    ops: list[Op]
    log: list[tuple[str, int, list[str]]]
    """(key, revision, lines) of every chunk, in revision order."""
    roots: dict[str, dict[int, str]]
    """node -> chunk ordinal of a batch boundary -> the root it published there."""
    nodes: dict[str, dict[str, Any]]
    """node -> its final ``/state_hash`` answer."""
    windows: list[Window]
    grace: float = 0.1
    """Seconds after a cut begins in which an ack may still be in flight."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["roots"] = {n: {str(k): r for k, r in rs.items()} for n, rs in self.roots.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            seed=data["seed"],
            run=data["run"],
            schedule=data["schedule"],
            sites=data["sites"],
            batch_every=data["batch_every"],
            ops=[Op(**op) for op in data["ops"]],
            log=[(k, int(r), list(lines)) for k, r, lines in data["log"]],
            roots={n: {int(k): r for k, r in rs.items()} for n, rs in data["roots"].items()},
            nodes=data["nodes"],
            windows=[Window(**w) for w in data["windows"]],
            grace=data.get("grace", 0.1),
        )


@dataclass
class Verdict:
    acked: int = 0
    """Distinct messages acknowledged."""
    attempts: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lies: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    split_brain: list[str] = field(default_factory=list)
    unknown: int = 0
    """Attempts whose outcome the client did not learn."""
    unknown_logged: int = 0
    """Messages never acknowledged whose unknown attempt(s) turned out logged."""
    unknown_not_logged: int = 0
    extra_copies: int = 0
    """Second copies of a message in the log (an attempt with an unknown outcome landed and its
    retry did too), each rejected by the engine as ``duplicate_order_id``."""
    fenced_chunks: int = 0
    """Empty chunks in the log: writes a gateway gave up on and fenced."""
    chunks: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicates
            or self.lies
            or self.phantoms
            or self.nodes
            or self.split_brain
        )

    def problems(self) -> list[str]:
        out = []
        for name in ("lost", "duplicates", "lies", "phantoms", "nodes", "split_brain"):
            items: list[str] = getattr(self, name)
            out += [f"{name}: {item}" for item in items[:5]]
            if len(items) > 5:
                out.append(f"{name}: ... {len(items) - 5} more")
        return out


def _gateway_of(key: str) -> str:
    return key[len(LOG) :].split("/", 1)[0] if key.startswith(LOG.decode()) else ""


def replay(
    log: list[tuple[str, int, list[str]]], batch_every: int
) -> tuple[dict[int, str], str, int, Counter[str]]:
    """Apply the log as every node does: (root at each batch boundary by chunk ordinal, final
    state hash, final sequence, accepted copies per line)."""
    engine = Engine()
    roots: dict[int, str] = {}
    accepted: Counter[str] = Counter()
    seq = 0
    for applied, (key, revision, lines) in enumerate(log, start=1):
        chunk = Chunk(key.encode(), revision, [line.encode() for line in lines])
        msgs = chunk.messages()
        for line, msg in zip(lines, msgs, strict=True):
            seq += 1
            if engine.apply_at(seq, msg).reason is None:
                accepted[line] += 1
        if applied % batch_every == 0:
            roots[applied] = engine.state_hash().hex()
    return roots, engine.state_hash().hex(), engine.seq, accepted


def check(record: RunRecord) -> Verdict:
    v = Verdict(attempts=len(record.ops), chunks=len(record.log))
    ops = record.ops
    positions: dict[tuple[int, int], str] = {}
    copies: Counter[str] = Counter()
    copies_by_gateway: Counter[tuple[str, str]] = Counter()
    for key, revision, lines in record.log:
        if not lines:
            v.fenced_chunks += 1
        gateway = _gateway_of(key)
        for i, line in enumerate(lines):
            positions[revision, i] = line
            copies[line] += 1
            copies_by_gateway[line, gateway] += 1

    by_line: dict[str, list[Op]] = {}
    for op in ops:
        by_line.setdefault(op.line, []).append(op)
    acked = {op.line for op in ops if op.result == "ok"}
    v.acked = len(acked)
    v.unknown = sum(1 for op in ops if op.result == "unknown")

    # lost: every ack points at its message
    for op in ops:
        if op.result == "ok" and positions.get((op.rev, op.pos)) != op.line:
            found = positions.get((op.rev, op.pos))
            v.lost.append(
                f"message {op.index} acked by {op.gateway} at ({op.rev}, {op.pos}) "
                f"but the log holds {found!r} there"
            )

    # per gateway: no more copies than attempts that could land; refused ones never
    for line, attempts in by_line.items():
        for gateway in {op.gateway for op in attempts}:
            mine = [op for op in attempts if op.gateway == gateway]
            could = sum(1 for op in mine if op.result in ("ok", "unknown"))
            logged = copies_by_gateway[line, gateway]
            if logged > could:
                refused = [op for op in mine if op.result == "fail" and op.status == 503]
                target = v.lies if refused else v.duplicates
                target.append(
                    f"message {attempts[0].index} logged {logged}x by gateway {gateway}, which "
                    f"had {could} attempt(s) that could land and {len(refused)} refused "
                    f'("never committed")'
                )

    # in effect at most once
    expected_roots, final_hash, final_seq, accepted = replay(record.log, record.batch_every)
    for line, attempts in by_line.items():
        retriable = attempts[0].retriable
        if retriable:
            v.extra_copies += max(0, copies[line] - 1)
        if retriable and accepted[line] > 1:
            v.duplicates.append(f"message {attempts[0].index} took effect {accepted[line]} times")
        elif not retriable and copies[line] > 1:
            v.duplicates.append(
                f"message {attempts[0].index} (no client order id) logged {copies[line]} times"
            )
        if line not in acked and any(op.result == "unknown" for op in attempts):
            if copies[line]:
                v.unknown_logged += 1
            else:
                v.unknown_not_logged += 1

    # phantoms
    for line in copies:
        if line not in by_line:
            v.phantoms.append(f"{line[:80]} is in the log but no client sent it")

    # nodes: roots at every boundary, final state
    for node, roots in record.roots.items():
        for k, root in sorted(roots.items()):
            if expected_roots.get(k) != root:
                v.nodes.append(
                    f"node {node} published root {root[:16]} at chunk {k}, the log gives "
                    f"{str(expected_roots.get(k))[:16]}"
                )
                break
    for node, state in record.nodes.items():
        if (state.get("applied_chunk"), state.get("hash")) != (len(record.log), final_hash):
            v.nodes.append(
                f"node {node} ended at chunk {state.get('applied_chunk')} hash "
                f"{str(state.get('hash'))[:16]}, the log gives chunk {len(record.log)} hash "
                f"{final_hash[:16]} (seq {final_seq})"
            )

    # split brain
    for w in record.windows:
        for op in ops:
            if (
                op.result == "ok"
                and op.gateway in w.minority
                and op.invoke >= w.start + record.grace
                and op.complete <= w.end
            ):
                v.split_brain.append(
                    f"gateway {op.gateway} acked message {op.index} at ({op.rev}, {op.pos}) "
                    f"while cut off from a quorum ({w.kind}, request "
                    f"{op.invoke - w.start:.2f}-{op.complete - w.start:.2f} s into it)"
                )
    return v
