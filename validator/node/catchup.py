"""Catching up by snapshot transfer: a node whose log position etcd has compacted away (a new or
replaced machine, an empty disk) asks its peers for the snapshot each holds for the committee
(its newest or, with a settler, the newest at or before the ledger's last commit) and takes the
first one the committee vouches for.

A snapshot is taken at a batch boundary (``snapshot_every`` is a multiple of ``batch_every``), and
at every boundary each node publishes its state root and hash-chain head under
``/venue/roots/<chunk>/<node>``. A fetched snapshot at chunk ``k`` is accepted only if a majority
of the committee published, for chunk ``k``, the root sha256(snapshot body) (the engine's state
hash is the hash of its canonical snapshot), the same hash-chain head, the same last sequence and
the same log revision (where the node goes on from), and if the engine then restores it
(canonical and consistent). Anything else (a peer that does not answer, a bit flipped, a
snapshot of another state or place in the log, one no majority vouches for) is refused with the
reason, and the next peer is asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass

import aiohttp

from validator.engine import Engine
from validator.engine.errors import SnapshotError
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.inputlog import roots_prefix
from validator.node.snapshot_files import Position

log = logging.getLogger("validator.node.catchup")

#: the largest snapshot accepted from a peer
MAX_SNAPSHOT_BYTES = 1 << 30
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=120.0, sock_connect=3.0)


@dataclass(frozen=True)
class Transferred:
    """A verified snapshot: where it is in the log, the engine it restores, its bytes."""

    at: Position
    seq: int
    engine: Engine
    body: bytes
    peer: str


class SnapshotRefused(Exception):
    """Raised when a peer's snapshot is not one the committee vouches for (the reason says
    which check failed)."""


def parse(raw: bytes) -> tuple[Position, int, bytes]:
    """(position, sequence, engine snapshot) of a snapshot file's bytes."""
    header, sep, body = raw.partition(b"\n")
    if not sep:
        raise SnapshotRefused("no header line")
    try:
        meta = json.loads(header)
        at = Position(int(meta["ordinal"]), int(meta["revision"]), bytes.fromhex(meta["chain"]))
        seq = int(meta["seq"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # nesting: RecursionError
        raise SnapshotRefused(f"bad header {header[:80]!r}: {type(exc).__name__}") from None
    return at, seq, body


async def vouched(etcd: EtcdClient, committee: list[str], ordinal: int) -> dict[str, object]:
    """The root record (root, chain, last) a majority of the committee published for chunk
    ``ordinal``; SnapshotRefused if none has a majority."""
    kvs, _, _ = await etcd.get_range(roots_prefix(ordinal), prefix_end(roots_prefix(ordinal)))
    votes: dict[tuple[str, str, int, int | None], int] = {}
    for kv in kvs:
        if kv.key[len(roots_prefix(ordinal)) :].decode(errors="replace") not in committee:
            continue
        try:
            d = json.loads(kv.value)
            revision = int(d["revision"]) if "revision" in d else None  # None: an older node's
            key = (str(d["root"]), str(d["chain"]), int(d["last"]), revision)
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        votes[key] = votes.get(key, 0) + 1
    majority = len(committee) // 2 + 1
    for (root, chain, last, revision), n in votes.items():
        if n >= majority:
            return {"root": root, "chain": chain, "last": last, "revision": revision}
    raise SnapshotRefused(
        f"no majority of the committee published a root for chunk {ordinal} ({sum(votes.values())}"
        f" of {len(committee)} roots, {len(votes)} distinct)"
    )


async def verify(raw: bytes, etcd: EtcdClient, committee: list[str], peer: str) -> Transferred:
    """The snapshot in ``raw`` if the committee vouches for it, else SnapshotRefused."""
    at, seq, body = parse(raw)
    record = await vouched(etcd, committee, at.ordinal)
    root = hashlib.sha256(body).hexdigest()
    if root != record["root"]:
        raise SnapshotRefused(
            f"state root {root} at chunk {at.ordinal} is not the committee's {record['root']}"
        )
    if at.chain.hex() != record["chain"] or seq != record["last"]:
        raise SnapshotRefused(
            f"chunk {at.ordinal}: hash-chain head {at.chain.hex()[:16]}... / seq {seq} differ "
            f"from the committee's {str(record['chain'])[:16]}... / {record['last']}"
        )
    # another revision: the node would go on from the wrong place in the log, skipping chunks
    # or applying some twice (None: roots of nodes from before revisions were recorded)
    if record["revision"] is not None and at.revision != record["revision"]:
        raise SnapshotRefused(
            f"chunk {at.ordinal}: log revision {at.revision} is not the committee's "
            f"{record['revision']}"
        )
    try:
        engine = await asyncio.to_thread(Engine.restore, body)
    except SnapshotError as exc:
        raise SnapshotRefused(f"the engine refuses it: {exc}") from None
    return Transferred(at, seq, engine, body, peer)


async def fetch(session: aiohttp.ClientSession, peer: str) -> bytes:
    async with session.get(peer.rstrip("/") + "/snapshot") as reply:
        if reply.status != 200:
            raise SnapshotRefused(f"HTTP {reply.status}")
        if (reply.content_length or 0) > MAX_SNAPSHOT_BYTES:
            raise SnapshotRefused(f"larger than {MAX_SNAPSHOT_BYTES} bytes")
        # to the end: one read returns what has arrived so far (a few hundred KiB), and a cut
        # snapshot would be refused as another state than the committee's
        parts, size = [], 0
        async for piece in reply.content.iter_any():
            size += len(piece)
            if size > MAX_SNAPSHOT_BYTES:
                raise SnapshotRefused(f"larger than {MAX_SNAPSHOT_BYTES} bytes")
            parts.append(piece)
        return b"".join(parts)


async def transfer(
    peers: list[str], etcd: EtcdClient, committee: list[str], after_revision: int
) -> tuple[Transferred | None, list[str]]:
    """The first peer snapshot the committee vouches for that is past ``after_revision``, and
    why each peer before it was refused."""
    refused: list[str] = []
    async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as session:
        for peer in peers:
            try:
                got = await verify(await fetch(session, peer), etcd, committee, peer)
            except (SnapshotRefused, EtcdError) as exc:
                refused.append(f"{peer}: {exc}")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                refused.append(f"{peer}: unreachable ({type(exc).__name__}: {exc})"[:300])
            except Exception as exc:  # anything else a peer's bytes raise: refuse that peer only
                refused.append(f"{peer}: unusable ({type(exc).__name__}: {exc})"[:300])
            else:
                if got.at.revision > after_revision:
                    return got, refused
                refused.append(f"{peer}: its snapshot (revision {got.at.revision}) is not newer")
            log.warning("snapshot transfer refused: %s", refused[-1])
    return None, refused
