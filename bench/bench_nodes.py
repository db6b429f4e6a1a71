"""Acknowledged orders/s through a 3-member etcd cluster with group commit, and ack latency.

    python bench/bench_nodes.py [--seconds 10] [--batch 100] [--clients 16]

Three gateways (one per etcd member) on loopback; asyncio clients spread over them. Two phases:
"batched" (each request carries --batch orders, acked together) for throughput, and "single"
(one order per request) for per-order ack latency. Latency is per request, from send to the ack
(which etcd has committed on a quorum). Medians of a noisy shared 2-core machine: report as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.conftest import flow
from validator.etcdcluster import start_cluster
from validator.sites import make_sites


async def phase(
    urls: list[str], msgs: list[dict[str, object]], batch: int, clients: int, seconds: float
) -> dict[str, float]:
    lat: list[float] = []
    acked = 0
    cursor = 0
    deadline = time.perf_counter() + seconds

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal acked, cursor
        while time.perf_counter() < deadline and cursor < len(msgs):
            chunk = msgs[cursor : cursor + batch]
            cursor += batch
            t = time.perf_counter()
            r = await http.post(urls[k % len(urls)] + "/orders/batch", json=chunk)
            lat.append(time.perf_counter() - t)
            if r.status_code == 200:
                acked += len(chunk)

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=clients)) as h:
        await asyncio.gather(*(client(k, h) for k in range(clients)))
    elapsed = time.perf_counter() - start
    lat.sort()
    return {
        "orders_per_s": acked / elapsed,
        "ack_p50_ms": 1000 * statistics.median(lat),
        "ack_p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "requests": len(lat),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--clients", type=int, default=16)
    args = p.parse_args()
    msgs = flow(400_000, 11)
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_cluster(["fra1", "ams1", "dal1"], Path(tmp) / "etcd") as cluster,
    ):
        sites = make_sites(cluster, Path(tmp), snapshot_every=400, batch_every=100)
        try:
            urls = [s.gateway_url for s in sites.sites]
            batched = asyncio.run(phase(urls, msgs, args.batch, args.clients, args.seconds))
            single = asyncio.run(phase(urls, msgs[300_000:], 1, args.clients, args.seconds / 2))
        finally:
            sites.stop()
    print(json.dumps({"batched": batched, "single": single, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
