"""Benchmark of the host (not a test): what it costs here to wake a process that was idle.

An order's ack crosses about ten processes in turn (client, gateway, etcd members and back),
and at a low order rate every one of them was asleep when the order reached it. On a host whose
idle CPUs halt (a VM without halt polling, deep C-states), each such wake-up costs far more than
the work itself, and that cost is the host's, not the venue's. This prints it, so an ack
latency figure can be read against the host it was measured on.

Run from the repository root::

    .venv/bin/python bench/host_wake.py                 # TCP echo between two processes
    .venv/bin/python bench/host_wake.py --etcd          # also etcd calls on a 3-member cluster
    .venv/bin/python bench/host_wake.py --keep-awake    # also with the CPUs kept from idling

Measured:

- ``echo``: one process sends 200 bytes over loopback TCP to an asyncio echo server in another
  process and waits for them back: two wake-ups per round trip (server, then client). Back to
  back, and after each idle gap (1, 5, 20 ms: at 50 orders/s a process sleeps ~20 ms between
  orders).
- ``--etcd``: the order path's own etcd calls over gRPC, on a loopback 3-member cluster
  (``devnet.etcdcluster``): a serializable Range (answered by the member alone, no raft) and the
  gateway's create-if-absent Txn (the member, the leader, a follower's fsync, and back), on the
  leader and on a follower, back to back and after 20 ms idle.
- ``--keep-awake``: everything again with one ``SCHED_IDLE`` spinner per CPU (it runs only when
  nothing else wants that CPU, the user-space counterpart of booting with ``idle=poll``). Not
  how the venue's benchmarks run: it shows what part of the idle cost is the CPUs' halting.

Per-hop wake cost is (idle round trip - back-to-back round trip) / 2 for the echo. Medians of
``--samples`` round trips per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GAPS_MS = (0, 1, 5, 20)
PAYLOAD = b"x" * 200

_SERVER = """
import asyncio, sys
async def handle(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


async def _timed(call: Callable[[], Awaitable[object]], gap_ms: float, samples: int) -> float:
    """Median round trip in ms of ``call``, with ``gap_ms`` of idleness before each one."""
    for _ in range(5):  # connections up, caches warm
        await call()
    out = []
    for _ in range(samples):
        if gap_ms:
            await asyncio.sleep(gap_ms / 1000)
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return statistics.median(out)


async def echo(samples: int) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        async def round_trip() -> None:
            writer.write(PAYLOAD)
            got = 0
            while got < len(PAYLOAD):
                got += len(await reader.read(65536))

        figures = {f"{gap} ms": await _timed(round_trip, gap, samples) for gap in GAPS_MS}
        writer.close()
        return figures
    finally:
        server.kill()
        server.wait()


async def etcd(samples: int) -> dict[str, float]:
    from devnet.etcdcluster import start_cluster
    from validator.node import etcdwire
    from validator.node.etcd import EtcdClient

    cluster = start_cluster(["a", "b", "c"], pre_vote=True)
    client = EtcdClient(cluster.endpoints)
    try:
        names = [m.name for m in cluster.members]
        leader = names.index(cluster.leader())
        follower = (leader + 1) % len(names)
        # Range with serializable=true (field 7): the member answers from its own store
        serializable = etcdwire._bytes_field(1, b"absent") + etcdwire._int_field(7, 1)
        figures: dict[str, float] = {}
        counter = iter(range(10**9))
        for role, index in (("leader", leader), ("follower", follower)):
            channel = client._channel(index)
            ranged: Any = channel.unary_unary("/etcdserverpb.KV/Range")
            txn: Any = channel.unary_unary(etcdwire.TXN)

            def range_call(ranged: Any = ranged) -> Awaitable[object]:
                return ranged(serializable, timeout=5)  # type: ignore[no-any-return]

            def txn_call(txn: Any = txn) -> Awaitable[object]:
                key = b"host-wake/%d" % next(counter)
                return txn(etcdwire.create_if_absent(key, PAYLOAD), timeout=5)  # type: ignore[no-any-return]

            for gap in (0, 20):
                figures[f"range {role} {gap} ms"] = await _timed(range_call, gap, samples)
                figures[f"txn {role} {gap} ms"] = await _timed(txn_call, gap, samples)
        return figures
    finally:
        await client.aclose()
        cluster.stop()


@contextlib.contextmanager
def spinners(enabled: bool) -> Iterator[None]:
    procs = []
    if enabled:
        for _ in range(os.cpu_count() or 1):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", "while True: pass"],
                    preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0)),
                )
            )
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def report(title: str, figures: dict[str, float]) -> None:
    print(title)
    for name, value in figures.items():
        print(f"  {name:<22} {value:7.3f} ms")
    if "0 ms" in figures and "20 ms" in figures:
        hop = (figures["20 ms"] - figures["0 ms"]) / 2
        print(f"  wake-up cost per hop after 20 ms idle: {hop:.3f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--etcd", action="store_true", help="also time etcd calls")
    parser.add_argument("--keep-awake", action="store_true", help="also with SCHED_IDLE spinners")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"host: {os.cpu_count()} CPUs, load average {load:.2f}; medians of {args.samples}")
    modes = [False, True] if args.keep_awake else [False]
    for awake in modes:
        label = "CPUs kept awake (SCHED_IDLE spinners)" if awake else "CPUs idle as configured"
        with spinners(awake):
            report(f"echo between two processes, {label}", await echo(args.samples))
            if args.etcd:
                report(f"etcd over gRPC, 3 loopback members, {label}", await etcd(args.samples))


if __name__ == "__main__":
    asyncio.run(main())
