"""A small HTTP/1.1 load generator: keep-alive connections, one request in flight on each.

    python bench/loadgen.py http://127.0.0.1:8000/scores --connections 16 --duration 5

Runs in its own process (so it does not share the server's event loop or GIL) and prints one
JSON line: requests, errors, seconds, requests per second, p50/p90/p99/max latency in ms.
Latency is from writing a request to reading the last byte of its response. Standard library
only (uvloop if installed), so the client costs as little CPU as it can on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def _worker(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while clock() < deadline:
            start = clock()
            writer.write(request)
            status_line = await reader.readline()
            length = -1
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length < 0:
                raise RuntimeError("response without Content-Length")
            await reader.readexactly(length)
            latencies.append(clock() - start)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode(errors="replace").strip())
    finally:
        writer.close()


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run(url: str, connections: int, duration: float, warmup: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n"
    if warmup > 0:
        await asyncio.gather(
            *(
                _worker(host, port, request.encode(), time.perf_counter() + warmup, [], [])
                for _ in range(connections)
            )
        )
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _worker(host, port, request.encode(), start + duration, latencies, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    ms = 1000.0
    return {
        "url": url,
        "connections": connections,
        "requests": len(ordered),
        "errors": len(errors),
        "seconds": round(elapsed, 3),
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(_percentile(ordered, 50) * ms, 3),
        "p90_ms": round(_percentile(ordered, 90) * ms, 3),
        "p99_ms": round(_percentile(ordered, 99) * ms, 3),
        "max_ms": round(ordered[-1] * ms, 3) if ordered else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    try:
        from uvloop import new_event_loop as loop_factory
    except ImportError:
        loop_factory = None  # type: ignore[assignment]
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(args.url, args.connections, args.duration, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
