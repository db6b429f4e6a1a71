"""Acknowledged orders/s through a 3-member etcd cluster with group commit, and ack latency.

    python bench/bench_nodes.py [--seconds 8] [--runs 3] [--batch 100] [--clients 12]
                                [--rates 300,1000,2000] [--json out.json]
    python bench/bench_nodes.py --geo [--sites fra1,ams1,dal1] [--route-factor 1.5] ...

Three sites on loopback, each an etcd member, a validator node (applying everything) and a
gateway; the load comes from this process (``devnet.leanhttp``: keep-alive HTTP/1.1 that costs
little CPU per request; requests encoded beforehand as compact JSON, ``devnet.flow.wire``, so
each order is its canonical line and a gateway logs it as it came), spread over
the three gateways. An order counts once its ack arrived, and an ack means etcd committed it on
a quorum. Phases, each repeated ``--runs`` times on a fresh cluster (medians reported):

- ``throughput``: closed loop, ``--clients`` connections each sending ``--batch`` orders per
  request as fast as acks come back: acknowledged orders/s, and the latency of those requests;
- ``latency``: open loop, single-order requests at a fixed ``--rate`` per second (Poisson
  arrivals), well below saturation: per-order ack latency p50/p99;
- ``latency_batched``: open loop, ``--batch``-order requests at a fixed rate of
  ``--batched-rate`` orders/s: the ack latency a client sending batches sees at that load;
- ``throughput_large``: closed loop again, on a fresh cluster of its own, ``--large-clients``
  connections sending ``--large-batch`` orders per request (450,000 orders of its own;
  ``--large-batch 0`` skips it): what the venue spends per order when requests, chunks and
  etcd transactions are large and their fixed costs are spread thin.
- ``--without-nodes`` (opt-in): the single-order phases once more, on a fresh cluster whose
  three nodes were stopped before the load, so no one watches the log and nothing is applied:
  a bound on what the nodes sharing this machine cost the ack latency (that cluster starts
  empty, where the normal phases follow the closed loop). A diagnosis, not a way to run.

Also prints the CPU time each kind of process used per second of run (etcd, nodes, gateways,
this load generator): the machine has 2 cores for all ten processes; and, for the throughput
and batched phases, the CPU each kind used per 1,000 acknowledged orders and the venue's
acknowledged orders per CPU-second of its nine processes (CPU counted until the nodes had
applied every order).
Goals: >= 50,000 acked orders/s; >= 100,000 orders per CPU-second; ack p50 <= 5 ms, p99 <= 20 ms
on loopback.

``--geo``: the sites as hosts at their distances (``devnet.fabric``: a network namespace per
site, delaying relays with one-way delays from the sites' coordinates; etcd's heartbeat and
election timeout from the round trips measured through them, printed). The load then comes from
every site to its own gateway: the throughput phase from a thread per site, the latency phases
from an ack probe process per site (``devnet.ackprobe``), each figure per site beside its
physical floor: the round trip from the site to the leader plus the leader's round trip to its
nearest majority, twice: from the configured delays, and from the round trips measured through
the relays before the run (the network as emulated: each relay hop adds its threads' own time).
Goal: p50 at most the measured floor + 3 ms (what the venue itself adds); the excess over the
configured floor is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from host_wake import spinners

from devnet.ackprobe import probe_sites
from devnet.distance import ROUTE_FACTOR, DelayMatrix
from devnet.etcdcluster import start_cluster
from devnet.fabric import Fabric, etcd_timing, gateway_tuning
from devnet.flow import order_flow, wire
from devnet.http import http_json
from devnet.leanhttp import LeanClient
from devnet.nodes import Sites, make_sites
from validator.engine.codec import decode_object, encode_messages
from validator.engine.hashchain import HashChain
from validator.engine.machine import Engine
from validator.node.gateway import Gateway, decode_body
from validator.node.inputlog import Chunk, apply_chunk, encode_chunk

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pids(sites: Sites) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"etcd": [], "nodes": [], "gateways": [], "load": [os.getpid()]}
    for s in sites.sites:
        member = sites.cluster.member(s.name)
        assert member.process and s.node and s.gateway
        out["etcd"].append(member.process.pid)
        out["nodes"].append(s.node.pid)
        out["gateways"].append(s.gateway.pid)
    return out


def cpu_by_role(by_role: dict[str, list[int]]) -> dict[str, float]:
    return {role: sum(cpu_seconds(p) for p in ps) for role, ps in by_role.items()}


FLOW_BASE = 500_000
"""Orders of the throughput (the first 450,000) and single-order phases; the batched phase's
follow them."""
LARGE_ORDERS = 450_000
"""Orders of the large requests' phase (a flow of its own, for a cluster of its own)."""
VENUE_ROLES = ("etcd", "nodes", "gateways")
"""The processes of the 3-site cluster (the load generator is not one of them)."""
VENUE_GOAL = 100_000
"""Acknowledged orders per CPU-second summed over the cluster's processes (issue 17)."""


def venue_cpu(before: dict[str, float], after: dict[str, float], orders: float) -> dict[str, Any]:
    """CPU per 1,000 orders by role, and the venue's acknowledged orders per CPU-second, from
    CPU-seconds by role taken when the load started and once the nodes had applied it all (so a
    node that fell behind pays for catching up too)."""
    if orders <= 0:
        raise RuntimeError("no order was acknowledged in this phase: nothing to divide by")
    ms = {role: 1e6 * (after[role] - before[role]) / orders for role in before}
    venue = sum(ms[role] for role in VENUE_ROLES)
    return {"cpu_ms_per_1000": ms, "orders_per_cpu_s": 1e6 / venue}


def pipeline_alone(msgs: list[dict[str, Any]], chunk: int) -> float:
    """CPU microseconds per order of one node's per-chunk work (inflate, decode, apply, hash
    chain: ``follower.Node._apply`` without the watch) on ``msgs`` cut into chunks of ``chunk``
    canonical lines, in this process, alone on its core: what a node in the cluster would spend
    per order if sharing the machine and reading etcd cost nothing."""
    lines = encode_messages([decode_object(m) for m in msgs])
    values = [encode_chunk(lines[i : i + chunk]) for i in range(0, len(lines), chunk)]
    engine, chain = Engine(), HashChain()
    start = time.process_time()
    for value in values:
        apply_chunk(engine, chain, Chunk.decode(b"k", 1, value))
    return 1e6 * (time.process_time() - start) / len(lines)


class _StandInLog:
    """Stands in for a gateway's sequencer in ``gateway_alone``: every request its own chunk."""

    revision = 0

    async def submit(self, lines: list[bytes]) -> tuple[int, int]:
        self.revision += 1
        return self.revision, 0


def gateway_alone(bodies: list[bytes]) -> dict[str, float]:
    """CPU microseconds per order of one gateway's own work on these request bodies (decoding
    them, answering retries from its table, remembering the orders; ``GatewayApp._orders``
    without HTTP, etcd or compression), in this process: as sent, and the same messages with
    the spaces ``json.dumps`` writes by default (``", "`` and ``": "``), which are never
    canonical lines, so the gateway encodes each message again."""

    async def accept(gateway: Gateway, batch: list[bytes]) -> None:
        for body in batch:
            await gateway.accept_messages(*decode_body(body, True))

    bodies = bodies[:20]  # the first 20 requests (100,000 orders with --large-batch 5000)
    spaced = [json.dumps(json.loads(body)).encode() for body in bodies]
    orders = sum(len(json.loads(body)) for body in bodies)
    times: dict[str, list[float]] = {"as_sent": [], "spaced": []}
    for _ in range(3):  # interleaved, medians
        for name, batch in (("as_sent", bodies), ("spaced", spaced)):
            gateway = Gateway(_StandInLog(), "bench")  # type: ignore[arg-type]
            start = time.process_time()
            asyncio.run(accept(gateway, batch))
            times[name].append(1e6 * (time.process_time() - start) / orders)
    return {name: statistics.median(values) for name, values in times.items()}


def chunks_written(sites: Sites) -> int:
    return sum(http_json(s.gateway_url + "/health")[1]["chunks_written"] for s in sites.sites)


def drain(sites: Sites, timeout: float = 120.0) -> float:
    """When every node has applied every chunk the gateways wrote (perf_counter time)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        written = chunks_written(sites)
        applied = [http_json(s.node_url + "/health")[1]["applied_chunk"] for s in sites.sites]
        if min(applied) >= written:
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError("nodes did not catch up")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def closed_loop(
    urls: list[str], bodies: list[bytes], per_body: int, clients: int, seconds: float
) -> dict[str, float]:
    lat: list[float] = []
    acked = 0
    cursor = 0
    deadline = time.perf_counter() + seconds
    pools = {url: LeanClient(url) for url in urls}

    async def client(k: int) -> None:
        nonlocal acked, cursor
        pool = pools[urls[k % len(urls)]]
        while time.perf_counter() < deadline and cursor < len(bodies):
            body = bodies[cursor]
            cursor += 1
            t = time.perf_counter()
            status, _ = await pool.post("/orders/batch", body)
            lat.append(time.perf_counter() - t)
            if status == 200:
                acked += per_body

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    for pool in pools.values():
        await pool.close()
    return {
        "acked": acked,
        "orders_per_s": acked / elapsed,
        "request_p50_ms": 1000 * statistics.median(lat),
        "request_p99_ms": 1000 * pct(lat, 0.99),
        "requests": len(lat),
    }


#: every ack latency (ms) measured, by (path, offered orders/s), for --plot
SAMPLES: dict[tuple[str, float], list[float]] = {}


def plot_ack_latency(out: Path) -> str:
    """The distribution (CDF) of single-order ack latencies at each offered rate, every run
    pooled, beside the goals; needs matplotlib (``pip install -e '.[bench]'``)."""
    try:
        import matplotlib  # optional: only the plot needs it

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]')"
    fig, ax = plt.subplots(figsize=(7, 4))
    for (path, rate), lat in sorted(SAMPLES.items()):
        if path != "/orders" or not lat:
            continue
        xs = sorted(lat)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=f"{rate:,.0f} orders/s ({len(xs):,} acks)")
    ax.axvline(5, color="grey", linestyle="--", linewidth=1)
    ax.axvline(20, color="grey", linestyle=":", linewidth=1)
    ax.text(5, 0.02, " p50 goal 5 ms", color="grey", fontsize=8)
    ax.text(20, 0.02, " p99 goal 20 ms", color="grey", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ack latency of one order (ms, log scale)")
    ax.set_ylabel("fraction of orders acknowledged")
    ax.set_title("Single-order ack latency, 3-member etcd on loopback (open loop)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return f"plot: {out}"


async def open_loop(
    urls: list[str],
    bodies: list[bytes],
    path: str,
    per_body: int,
    rate: float,
    seconds: float,
    plotted: bool = True,
) -> dict[str, float]:
    """Requests at Poisson arrivals of ``rate`` per second, whatever the answers do (their
    latencies kept for ``--plot`` if ``plotted``)."""
    lat: list[float] = []
    failed = 0
    rng = random.Random(5)
    tasks = []
    pools = {url: LeanClient(url) for url in urls}

    async def one(url: str, body: bytes) -> None:
        nonlocal failed
        t = time.perf_counter()
        status, _ = await pools[url].post(path, body)
        if status != 200:
            failed += 1
        lat.append(time.perf_counter() - t)

    for pool in pools.values():  # a first request pays connection set-up, not the log
        await pool.get("/health")
    start = next_at = time.perf_counter()
    i = 0
    while next_at - start < seconds and i < len(bodies):
        now = time.perf_counter()
        if now < next_at:
            await asyncio.sleep(next_at - now)
        url = urls[i % len(urls)]
        tasks.append(asyncio.create_task(one(url, bodies[i])))
        i += 1
        next_at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    for pool in pools.values():
        await pool.close()
    if plotted:
        SAMPLES.setdefault((path, rate * per_body), []).extend(1000 * x for x in lat)
    return {
        "offered_orders_per_s": rate * per_body,
        "ack_p50_ms": 1000 * statistics.median(lat),
        "ack_p99_ms": 1000 * pct(lat, 0.99),
        "requests": len(lat),
        "failed": failed,
    }


@contextlib.contextmanager
def fresh_cluster() -> Iterator[tuple[Sites, list[str], dict[str, list[int]]]]:
    """Three sites on loopback, started for one run and stopped after it: (sites, gateway
    URLs, process ids by role)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_cluster(["fra1", "ams1", "dal1"], Path(tmp) / "etcd") as cluster,
    ):
        sites = make_sites(cluster, Path(tmp), snapshot_every=400, batch_every=100)
        try:
            yield sites, [s.gateway_url for s in sites.sites], pids(sites)
        finally:
            sites.stop()


def large_run(args: argparse.Namespace, bodies: list[bytes]) -> dict[str, Any]:
    """The closed loop with large requests, on a fresh cluster of its own (as the first
    phase's: a cluster that has applied the other phases' orders holds a larger state)."""
    with fresh_cluster() as (sites, urls, roles):
        cpu0, c0 = cpu_by_role(roles), chunks_written(sites)
        big = uvloop.run(
            closed_loop(urls, bodies, args.large_batch, args.large_clients, args.seconds)
        )
        big["orders_per_chunk"] = big["acked"] / max(1, chunks_written(sites) - c0)
        drain(sites)
        big.update(venue_cpu(cpu0, cpu_by_role(roles), big["acked"]))
        return big


def single_orders(
    args: argparse.Namespace,
    sites: Sites,
    urls: list[str],
    roles: dict[str, list[int]],
    singles: list[bytes],
    plotted: bool = True,
) -> dict[str, Any]:
    """The single-order latency phases, one per rate of ``args.rates``, each with orders of
    its own from ``singles``: ack p50/p99, CPU cores per role, orders per chunk written."""
    out: dict[str, Any] = {}
    for rate in args.rates:
        n = int(rate * args.seconds)
        cpu0, t0, c0 = cpu_by_role(roles), time.perf_counter(), chunks_written(sites)
        lat = out[f"{rate:g}/s"] = uvloop.run(
            open_loop(urls, singles[:n], "/orders", 1, rate, args.seconds / 2, plotted)
        )
        cpu1, t1, c1 = cpu_by_role(roles), time.perf_counter(), chunks_written(sites)
        lat["cpu_cores"] = {r: (cpu1[r] - cpu0[r]) / (t1 - t0) for r in cpu0}
        lat["orders_per_chunk"] = lat["requests"] / max(1, c1 - c0)
        singles = singles[n:]
    return out


def without_nodes_run(args: argparse.Namespace, singles: list[bytes]) -> dict[str, Any]:
    """The single-order latency phases again, on a fresh cluster whose three nodes were
    stopped before the load: no one watches the log, and only etcd, the gateways and the
    load share the machine. A diagnosis (a bound on how much of the ack latency the
    co-located nodes cost; the cluster starts empty, where the normal phases follow the
    closed loop's orders), never a way to run the venue: nothing is applied."""
    with fresh_cluster() as (sites, urls, roles):
        for site in sites.sites:
            sites.kill_node(site.name)
        return single_orders(args, sites, urls, {**roles, "nodes": []}, singles, plotted=False)


def one_run(
    args: argparse.Namespace, msgs: list[dict[str, Any]], large_msgs: list[dict[str, Any]]
) -> dict[str, Any]:
    batch = args.batch
    batched = [wire(msgs[i : i + batch]) for i in range(0, 450_000 - batch + 1, batch)]
    singles = [wire(m) for m in msgs[450_000:FLOW_BASE]]
    # The batched phase's own orders, after the singles (no phase sends another's orders again:
    # a gateway answers a resent order from memory, and the engine rejects a second copy).
    later = [wire(msgs[i : i + batch]) for i in range(FLOW_BASE, len(msgs), batch)]
    size = args.large_batch
    large = [
        wire(large_msgs[i : i + size])
        for i in range(0, len(large_msgs) if size > 0 else 0, max(1, size))
    ]
    load = os.getloadavg()[0]  # the machine's before this run's cluster starts
    with fresh_cluster() as (sites, urls, roles):
        out: dict[str, Any] = {"load_before": load}
        cpu0, t0, c0 = cpu_by_role(roles), time.perf_counter(), chunks_written(sites)
        out["throughput"] = uvloop.run(
            closed_loop(urls, batched, batch, args.clients, args.seconds)
        )
        cpu1, t1, c1 = cpu_by_role(roles), time.perf_counter(), chunks_written(sites)
        out["throughput"]["orders_per_chunk"] = out["throughput"]["acked"] / max(1, c1 - c0)
        out["throughput"]["cpu_cores"] = {r: (cpu1[r] - cpu0[r]) / (t1 - t0) for r in cpu0}
        drained = drain(sites)
        cpu2 = cpu_by_role(roles)
        out["throughput"]["nodes_behind_s"] = drained - t1
        acked = out["throughput"]["acked"]
        out["throughput"]["nodes_applied_per_s"] = acked / (drained - t0)
        out["throughput"].update(venue_cpu(cpu0, cpu2, acked))
        out["latency"] = single_orders(args, sites, urls, roles, singles)
        drain(sites)
        cpu0 = cpu_by_role(roles)
        out["latency_batched"] = uvloop.run(
            open_loop(
                urls,
                later,
                "/orders/batch",
                batch,
                args.batched_rate / batch,
                args.seconds / 2,
            )
        )
        drain(sites)
        done = out["latency_batched"]
        orders = batch * (done["requests"] - done["failed"])
        done.update(venue_cpu(cpu0, cpu_by_role(roles), orders))
    if large:
        out["throughput_large"] = large_run(args, large)
    if args.without_nodes:
        out["latency_without_nodes"] = without_nodes_run(args, singles)
    if large:
        out["throughput_large"]["gateway_alone_us"] = gateway_alone(large)
    # the throughput phase's orders again, through a node's pipeline in this process alone
    tput = out["throughput"]
    tput["pipeline_alone_us"] = pipeline_alone(
        msgs[: tput["acked"]], max(1, round(tput["orders_per_chunk"]))
    )
    return out


def geo_run(args: argparse.Namespace, msgs: list[dict[str, Any]], fabric: Fabric) -> dict[str, Any]:
    """One fresh cluster with the sites as hosts: throughput with load from every site, then
    per-site ack latency against the physical floor."""
    names = list(fabric.sites)
    rtts = fabric.measure_rtts()
    heartbeat, election = etcd_timing(rtts)
    tuning = gateway_tuning(rtts)
    if args.inflight:
        tuning["max_inflight_writes"] = args.inflight
    matrix = fabric.matrix
    batch = args.batch
    with tempfile.TemporaryDirectory() as tmp, fabric.observe():
        cluster = start_cluster(
            names, Path(tmp) / "etcd", heartbeat, election, placements=fabric.placements
        )
        sites = make_sites(
            cluster,
            Path(tmp),
            nearest=matrix.nearest,
            snapshot_every=400,
            batch_every=100,
            **tuning,
        )
        try:
            out: dict[str, Any] = {
                "etcd": {"heartbeat_ms": heartbeat, "election_ms": election},
                "gateway": tuning,
                "measured_rtt_ms": {f"{a}>{b}": round(v, 2) for (a, b), v in rtts.items()},
            }
            share = 450_000 // len(names)
            results: dict[str, dict[str, float]] = {}

            def load(k: int, site: str) -> None:
                fabric.enter(site)
                part = msgs[k * share : (k + 1) * share]
                bodies = [wire(part[i : i + batch]) for i in range(0, len(part) - batch + 1, batch)]
                url = sites.site(site).gateway_url_from(site)
                per_site = max(1, args.clients // len(names))
                loop = closed_loop([url], bodies, batch, per_site, args.seconds)
                results[site] = uvloop.run(loop)

            roles = pids(sites)
            cpu0, t0 = cpu_by_role(roles), time.perf_counter()
            threads = [threading.Thread(target=load, args=(k, s)) for k, s in enumerate(names)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cpu1, t1 = cpu_by_role(roles), time.perf_counter()
            out["throughput"] = {
                "orders_per_s": sum(r["orders_per_s"] for r in results.values()),
                "by_site": results,
                "cpu_cores": {r: (cpu1[r] - cpu0[r]) / (t1 - t0) for r in cpu0},
            }
            drain(sites)
            leader = cluster.leader()
            out["leader"] = leader
            singles = msgs[450_000:FLOW_BASE]
            out["latency"] = {}
            for rate in args.rates:
                per_site = int(rate * args.seconds / 2 / len(names)) + 50
                bodies = {
                    s: [wire(m) for m in singles[k * per_site : (k + 1) * per_site]]
                    for k, s in enumerate(names)
                }
                singles = singles[len(names) * per_site :]
                with spinners(args.keep_awake):
                    probed = probe_sites(
                        fabric, sites, bodies, rate / len(names), args.seconds / 2, Path(tmp)
                    )
                out["latency"][f"{rate:g}/s"] = {
                    s: {
                        "ack_p50_ms": statistics.median(p["latencies_ms"]),  # type: ignore[arg-type]
                        "ack_p99_ms": pct(p["latencies_ms"], 0.99),  # type: ignore[arg-type]
                        "floor_ms": matrix.ack_floor_us(s, leader) / 1000,
                        "measured_floor_ms": matrix.measured_ack_floor_ms(rtts, s, leader),
                        "failed": p["failed"],
                    }
                    for s, p in probed.items()
                }
        finally:
            sites.stop()
            cluster.stop()
    return out


def geo_main(args: argparse.Namespace, msgs: list[dict[str, Any]]) -> int:
    names = args.sites.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-fabric-") as tmp:
        fabric = Fabric.start(names, Path(tmp), DelayMatrix.of(names, args.route_factor))
        try:
            if not fabric.namespaced:
                print(f"--geo needs network namespaces: {fabric.describe()}", file=sys.stderr)
                return 2
            runs = []
            for i in range(args.runs):
                runs.append(geo_run(args, msgs, fabric))
                print(f"geo run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
        finally:
            fabric.stop()
    first = runs[0]
    print(f"sites {', '.join(names)}: {fabric.describe()}")
    print(
        f"etcd heartbeat {first['etcd']['heartbeat_ms']} ms, election timeout "
        f"{first['etcd']['election_ms']} ms (from the measured round trips: "
        f"{first['measured_rtt_ms']}); gateway {first['gateway']}"
    )
    tput = statistics.median(r["throughput"]["orders_per_s"] for r in runs)
    print(
        f"acknowledged orders/s, closed loop from every site to its own gateway, batches of "
        f"{args.batch}: {tput:,.0f}/s (median of {args.runs})"
    )
    print(
        "| single orders/s (all sites) | site | leader | ack p50 ms | ack p99 ms | floor ms "
        "(configured delays) | floor ms (measured through the relays) | p50 - measured floor ms "
        "(goal <= 3) | p50 - configured floor ms |"
    )
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rate in first["latency"]:
        for site in names:

            def med(key: str, rate: str = rate, site: str = site) -> float:
                return float(statistics.median(r["latency"][rate][site][key] for r in runs))

            p50, p99 = med("ack_p50_ms"), med("ack_p99_ms")
            floor, measured = med("floor_ms"), med("measured_floor_ms")
            leaders = "/".join(sorted({r["leader"] for r in runs}))
            print(
                f"| {rate} | {site} | {leaders} | {p50:.1f} | {p99:.1f} | {floor:.1f} | "
                f"{measured:.1f} | {p50 - measured:+.1f} | {p50 - floor:+.1f} |"
            )
    awake = (
        "; CPUs kept from idling by one SCHED_IDLE spinner each during the latency phases"
        if args.keep_awake
        else ""
    )
    print(f"(medians of {args.runs} runs; 2-core machine shared by all processes{awake})")
    if args.json:
        result = {"geo": True, "runs": runs, "args": vars(args) | {"json": None}}
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def median_of(runs: list[Any]) -> Any:
    """Per-key medians of equally shaped (nested) run results."""
    if isinstance(runs[0], dict):
        return {key: median_of([r[key] for r in runs]) for key in runs[0]}
    return round(statistics.median(runs), 2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--clients", type=int, default=12)
    p.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[300.0, 1000.0, 2000.0],
        help="single-order requests/s for the latency phases (comma-separated)",
    )
    p.add_argument("--batched-rate", type=float, default=20000, help="orders/s in batches")
    p.add_argument(
        "--large-batch", type=int, default=5000, help="orders per request, last phase (0: skip)"
    )
    p.add_argument("--large-clients", type=int, default=6)
    p.add_argument("--geo", action="store_true", help="sites as hosts at emulated distances")
    p.add_argument("--sites", default="fra1,ams1,dal1", help="with --geo: the sites")
    p.add_argument("--route-factor", type=float, default=ROUTE_FACTOR)
    p.add_argument(
        "--inflight", type=int, help="with --geo: chunk writes in flight per gateway (from RTTs)"
    )
    p.add_argument(
        "--keep-awake",
        action="store_true",
        help="with --geo: one SCHED_IDLE spinner per CPU during the latency phases, so that idle "
        "CPUs do not halt (what booting with idle=poll does; see bench/host_wake.py)",
    )
    p.add_argument(
        "--without-nodes",
        action="store_true",
        help="also run the single-order phases on a fresh cluster whose nodes are stopped: "
        "what the co-located nodes cost the ack latency (a diagnosis; nothing is applied)",
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path, help="write the ack-latency distribution here (PNG)")
    args = p.parse_args()
    if args.geo and args.without_nodes:
        p.error("--without-nodes is for the loopback phases; --geo does not run it")
    batched = int(args.batched_rate * args.seconds / 2) + args.batch
    msgs = order_flow(FLOW_BASE + (0 if args.geo else batched), 11)
    # a flow of its own (its set-up first) for the large requests' fresh cluster
    large_msgs = order_flow(LARGE_ORDERS, 13) if args.large_batch and not args.geo else []
    if args.geo:
        return geo_main(args, msgs)
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args, msgs, large_msgs))
        print(f"run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
    result: dict[str, Any] = {
        "median": median_of(runs),
        "runs": runs,
        "args": {**vars(args), "json": None},
    }
    m: dict[str, Any] = result["median"]
    print(f"acknowledged orders/s (closed loop, batches of {args.batch}, {args.clients} clients)")
    print(f"  {m['throughput']['orders_per_s']:,.0f}/s   goal >= 50,000/s")
    print(
        f"  request p50 {m['throughput']['request_p50_ms']} ms, "
        f"p99 {m['throughput']['request_p99_ms']} ms at that load"
    )
    print(f"  CPU cores used: {m['throughput']['cpu_cores']} (2 cores in all)")
    per = ", ".join(f"{k} {v:.1f}" for k, v in m["throughput"]["cpu_ms_per_1000"].items())
    print(
        f"  venue: {m['throughput']['orders_per_cpu_s']:,.0f} acknowledged orders per CPU-second "
        f"of etcd, nodes and gateways (until the nodes applied them all)   "
        f"goal >= {VENUE_GOAL:,}\n  CPU ms per 1,000 orders: {per}"
    )
    print(
        f"  nodes applied {m['throughput']['nodes_applied_per_s']:,.0f} orders/s each and were "
        f"{m['throughput']['nodes_behind_s']} s behind when the load stopped; "
        f"{m['throughput']['orders_per_chunk']} orders per chunk written"
    )
    alone = m["throughput"]["pipeline_alone_us"]
    print(
        f"  the same orders through one node's pipeline (inflate, decode, apply, hash chain) in "
        f"this process, alone, in chunks of that size: {alone:.2f} us per order, so "
        f"{3 * alone:.1f} ms per 1,000 for three nodes (in the cluster: "
        f"{m['throughput']['cpu_ms_per_1000']['nodes']:.1f})"
    )
    for rate, lat in m["latency"].items():
        print(
            f"ack latency, single orders at {rate} (open loop): p50 {lat['ack_p50_ms']} ms "
            f"(goal <= 5), p99 {lat['ack_p99_ms']} ms (goal <= 20)"
        )
        print(
            f"  CPU cores used: {lat['cpu_cores']}; "
            f"{lat['orders_per_chunk']} orders per chunk written"
        )
    for rate, lat in m.get("latency_without_nodes", {}).items():
        print(
            f"  the same at {rate} with the three nodes stopped (nobody watching the log; a "
            f"diagnosis, not a way to run): p50 {lat['ack_p50_ms']} ms, p99 {lat['ack_p99_ms']} "
            f"ms; CPU cores used: {lat['cpu_cores']}; {lat['orders_per_chunk']} orders per chunk"
        )
    print(f"ack latency, batches of {args.batch} at {args.batched_rate:,.0f} orders/s (open loop)")
    print(
        f"  p50 {m['latency_batched']['ack_p50_ms']} ms, "
        f"p99 {m['latency_batched']['ack_p99_ms']} ms"
    )
    per = ", ".join(f"{k} {v:.1f}" for k, v in m["latency_batched"]["cpu_ms_per_1000"].items())
    print(
        f"  venue below saturation: {m['latency_batched']['orders_per_cpu_s']:,.0f} orders per "
        f"CPU-second; CPU ms per 1,000 orders: {per}"
    )
    if "throughput_large" in m:
        big = m["throughput_large"]
        per = ", ".join(f"{k} {v:.1f}" for k, v in big["cpu_ms_per_1000"].items())
        print(
            f"acknowledged orders/s (closed loop, requests of {args.large_batch:,} orders, "
            f"{args.large_clients} clients): {big['orders_per_s']:,.0f}/s, "
            f"{big['orders_per_chunk']} orders per chunk written"
        )
        print(
            f"  venue: {big['orders_per_cpu_s']:,.0f} acknowledged orders per CPU-second   "
            f"goal >= {VENUE_GOAL:,}\n  CPU ms per 1,000 orders: {per}"
        )
        alone = big["gateway_alone_us"]
        print(
            f"  the same requests through a gateway's own work (decode, retry table; no HTTP, "
            f"etcd or compression) in this process: {alone['as_sent']:.2f} us per order as sent "
            f"(compact JSON: each order its canonical line, logged as it came), "
            f"{alone['spaced']:.2f} us with json.dumps's default spaces (encoded again)"
        )
    loads = ", ".join(f"{r['load_before']:.1f}" for r in runs)
    print(
        f"(medians of {args.runs} runs; 2-core machine shared by all processes; loopback; "
        f"load average before each run: {loads})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.plot:
        print(plot_ack_latency(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
