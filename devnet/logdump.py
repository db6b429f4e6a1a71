"""Read the venue's input log straight from one etcd member's JSON gateway (blocking): for the
drill, the fault tests and tools that check what was acknowledged against what was logged."""

from __future__ import annotations

import json

from devnet.http import post_json
from validator.node.etcd import b64, prefix_end, unb64
from validator.node.inputlog import LOG, ROOTS, Chunk


def read_log(endpoint: str, after: int = 0, timeout: float = 10.0) -> list[Chunk]:
    """Every chunk still in the log (after revision ``after``), in log order, read straight from
    one etcd member's JSON gateway; for tools, tests and the drill (blocking)."""
    body = {"key": b64(LOG), "range_end": b64(prefix_end(LOG)), "min_mod_revision": after + 1}
    data = post_json(endpoint.rstrip("/") + "/v3/kv/range", body, timeout=timeout)
    chunks = [
        Chunk.decode(unb64(kv["key"]), int(kv["mod_revision"]), unb64(kv["value"]))
        for kv in data.get("kvs", [])
    ]
    return sorted(chunks, key=lambda c: c.revision)


def by_position(chunks: list[Chunk]) -> dict[tuple[int, int], bytes]:
    """(revision, index) -> line, the positions gateways acknowledge."""
    return {(c.revision, i): line for c in chunks for i, line in enumerate(c.lines)}


def read_roots(endpoint: str, timeout: float = 10.0) -> dict[str, dict[int, str]]:
    """Every state root nodes published at batch boundaries: node -> chunk ordinal -> root."""
    body = {"key": b64(ROOTS), "range_end": b64(prefix_end(ROOTS))}
    data = post_json(endpoint.rstrip("/") + "/v3/kv/range", body, timeout=timeout)
    out: dict[str, dict[int, str]] = {}
    for kv in data.get("kvs", []):
        ordinal, node = unb64(kv["key"])[len(ROOTS) :].decode().split("/", 1)
        out.setdefault(node, {})[int(ordinal)] = json.loads(unb64(kv["value"]))["root"]
    return out
