"""Ack-latency probe: single-order requests to one gateway at Poisson arrivals (open loop).

    python -m devnet.ackprobe BODIES --url URL --rate R --seconds S [--seed N]

BODIES is a file of request bodies, one JSON message per line (sent in order, each once). The
probe runs where it is started, so the benchmarks start one at each site (in its namespace,
a process of its own: no other load shares its interpreter) against that site's gateway, and
the ack latency it measures is what a client at that site sees. Prints one JSON object:
``{"latencies_ms": [...], "failed": n, "why": {status or exception: n}, "sent": n}`` (latencies
of acknowledged requests; what the failed ones got). The requests go through
``devnet.leanhttp``, so the probe's own cost per request stays out of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from devnet.leanhttp import LeanClient

if TYPE_CHECKING:
    from devnet.fabric import Fabric
    from devnet.nodes import Sites


async def probe(
    url: str, bodies: list[bytes], rate: float, seconds: float, seed: int
) -> dict[str, object]:
    latencies: list[float] = []
    failed = 0
    why: dict[str, int] = {}
    """What the failed requests got: an HTTP status, or the exception's class."""
    rng = random.Random(seed)
    tasks = []
    client = LeanClient(url)

    async def one(body: bytes) -> None:
        nonlocal failed
        t = time.perf_counter()
        try:
            status, _ = await client.post("/orders", body)
            ok, reason = status == 200, str(status)
        except (OSError, TimeoutError) as exc:
            ok, reason = False, type(exc).__name__
        if ok:
            latencies.append((time.perf_counter() - t) * 1000)
        else:
            failed += 1
            why[reason] = why.get(reason, 0) + 1

    # warm the connection pool: a first request pays connection set-up, not the log
    await client.get("/health")
    start = next_at = time.perf_counter()
    for body in bodies:
        if next_at - start >= seconds:
            break
        now = time.perf_counter()
        if now < next_at:
            await asyncio.sleep(next_at - now)
        tasks.append(asyncio.create_task(one(body)))
        next_at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    await client.close()
    return {"latencies_ms": latencies, "failed": failed, "why": why, "sent": len(tasks)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ackprobe", description=__doc__.splitlines()[0])
    parser.add_argument("bodies", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    result = uvloop.run(probe(args.url, bodies, args.rate, args.seconds, args.seed))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def probe_sites(
    fabric: Fabric,
    venue: Sites,
    bodies: dict[str, list[bytes]],
    rate: float,
    seconds: float,
    root: Path,
) -> dict[str, dict[str, object]]:
    """One probe per site in ``bodies``, all at once, each at its site against its own site's
    gateway at ``rate`` requests/s: site -> the probe's result."""
    procs = {}
    for site, lines in bodies.items():
        path = root / f"probe-{site}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        url = venue.site(site).gateway_url_from(site)
        cmd = fabric.command_at(
            site,
            [sys.executable, "-m", "devnet.ackprobe", str(path), "--url", url, "--rate",
             str(rate), "--seconds", str(seconds)],
        )  # fmt: skip
        procs[site] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for site, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"ack probe at {site} failed: {stderr.decode()[-400:]}")
        out[site] = json.loads(stdout)
    return out
