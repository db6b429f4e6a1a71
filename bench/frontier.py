"""The latency-redundancy frontier: how fast acks can be against how many sites may fail.

    python bench/frontier.py [--seconds 6] [--rate 25] [--out docs/frontier] [--json out.json]
                             [--sets fra1+ams1+lon1,...] [--route-factor 1.5]

For each candidate set of sites (3, 4 and 5 sites from the examples and the distance catalogue)
and each leader placement (etcd leadership moved to each site in turn), the sites run as hosts
at their emulated distances (``devnet.fabric``; etcd tuned from the measured round trips) and an
ack probe at every site (``devnet.ackprobe``) sends single orders to its own site's gateway at
``--rate`` per second: the pooled ack p50/p99 of all sites. Against it, two tolerances: the log's
(sites the etcd majority can lose and keep trading: (n - 1) // 2) and the committee's facility
tolerance from ``redundancy.scores`` (one equal-stake validator per site; settlement needs more
than 2/3 of the stake). Writes a table and one plot, PNG and SVG (matplotlib: ``pip install -e
'.[bench]'``), each point labelled with its sites, at the leader placement with the lowest p50
(the line to the right reaches the worst placement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devnet.ackprobe import probe_sites
from devnet.distance import ROUTE_FACTOR, DelayMatrix
from devnet.etcdcluster import start_cluster
from devnet.fabric import Fabric, etcd_timing, gateway_tuning
from devnet.flow import order_flow
from devnet.nodes import make_sites
from redundancy.domains import Dimension
from redundancy.scores import Member, dimension_score

SETS = [
    ("fra1", "ams1", "lon1"),
    ("fra1", "ams1", "dal1"),
    ("fra1", "lon1", "nyc1"),
    ("fra1", "ams1", "lon1", "nyc1"),
    ("fra1", "ams1", "lon1", "dal1"),
    ("fra1", "ams1", "lon1", "nyc1", "dal1"),
    ("fra1", "ams1", "lon1", "nyc1", "sgp1"),
]


def tolerances(sites: tuple[str, ...]) -> tuple[int, int]:
    """(log tolerance, committee facility tolerance) with one equal-stake validator per site."""
    members = [
        Member(f"0x{i:040x}", 10**18, tuple(bytes([i + 1]) * 32 for _ in Dimension))
        for i in range(len(sites))
    ]
    return (len(sites) - 1) // 2, dimension_score(members, Dimension.FACILITY).tolerance


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure_set(
    fabric: Fabric, sites: tuple[str, ...], rtts: dict[tuple[str, str], float],
    msgs: list[bytes], args: argparse.Namespace, root: Path,
) -> list[dict[str, Any]]:  # fmt: skip
    names = list(sites)
    heartbeat, election = etcd_timing({k: v for k, v in rtts.items() if set(k) <= set(names)})
    tuning = gateway_tuning({k: v for k, v in rtts.items() if set(k) <= set(names)})
    matrix = DelayMatrix(sites, fabric.matrix.route_factor, {
        k: v for k, v in fabric.matrix.one_way_us.items() if set(k) <= set(names)
    })  # fmt: skip
    out = []
    with tempfile.TemporaryDirectory(dir=root) as tmp, fabric.observe():
        cluster = start_cluster(
            names, Path(tmp) / "etcd", heartbeat, election, placements=fabric.placements
        )
        venue = make_sites(
            cluster,
            Path(tmp) / "nodes",
            nearest=matrix.nearest,
            snapshot_every=10**6,
            batch_every=100,
            **tuning,
            log_level="warning",
        )
        try:
            per_site = int(args.rate * args.seconds) + 20
            for leader in names:
                cluster.move_leader(leader)
                time.sleep(2 * election / 1000)  # proposals held during the transfer drain
                bodies = {s: [msgs.pop() for _ in range(per_site)] for s in names}
                probed = probe_sites(fabric, venue, bodies, args.rate, args.seconds, Path(tmp))
                actual = cluster.leader()
                pooled = [x for p in probed.values() for x in p["latencies_ms"]]  # type: ignore[attr-defined]
                row = {
                    "sites": names,
                    "leader": leader,
                    "leader_after": actual,
                    "ack_p50_ms": statistics.median(pooled),
                    "ack_p99_ms": pct(pooled, 0.99),
                    "floor_p50_ms": statistics.median(
                        matrix.ack_floor_us(s, leader) / 1000 for s in names
                    ),
                    "by_site": {
                        s: {
                            "p50": statistics.median(p["latencies_ms"]),  # type: ignore[arg-type]
                            "floor": matrix.ack_floor_us(s, leader) / 1000,
                        }
                        for s, p in probed.items()
                    },
                    "failed": sum(int(p["failed"]) for p in probed.values()),  # type: ignore[call-overload]
                    "failed_why": {s: p.get("why") for s, p in probed.items() if p.get("failed")},
                    "etcd": [heartbeat, election],
                    "gateway": tuning,
                    "tolerance": tolerances(sites),
                }
                out.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            venue.stop()
            cluster.stop()
    return out


def plot(rows: list[dict[str, Any]], out: Path, setting: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_set: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_set.setdefault("+".join(r["sites"]), []).append(r)
    from matplotlib.ticker import ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True)
    titles = (
        "log: sites the etcd majority can lose",
        "committee: facility tolerance (redundancy score)",
    )
    for panel, ax in enumerate(axes):
        seen: dict[int, int] = {}
        for name, rs in sorted(by_set.items(), key=lambda kv: min(r["ack_p50_ms"] for r in kv[1])):
            best = min(rs, key=lambda r: r["ack_p50_ms"])
            worst = max(r["ack_p50_ms"] for r in rs)
            y0 = best["tolerance"][panel]
            y = y0 + 0.15 * seen.get(y0, 0)  # stack points of equal tolerance
            seen[y0] = seen.get(y0, 0) + 1
            ax.plot([best["ack_p50_ms"], worst], [y, y], color="0.7", lw=1, zorder=1)
            color = f"C{len(best['sites']) - 3}"
            ax.scatter([best["ack_p50_ms"]], [y], s=40, zorder=3, color=color)
            ax.scatter([best["ack_p99_ms"]], [y], s=30, marker="x", color="0.4", zorder=2)
            ax.annotate(
                f"{name} (leader {best['leader']})",
                (best["ack_p50_ms"], y),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=7,
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        levels = sorted({r["tolerance"][panel] for r in rows})
        ax.set_ylim(min(levels) - 0.4, max(levels) + 0.4 + 0.15 * max(seen.values()))
        ax.set_xlabel("ack latency, ms (dot: p50 at the best leader; line: to the worst; x: p99)")
        ax.set_ylabel("sites that may fail")
        ax.set_title(titles[panel], fontsize=10)
        ax.set_yticks(levels)
        ax.grid(True, which="both", alpha=0.3)
        for n in sorted({len(r["sites"]) for r in rows}):
            ax.scatter([], [], color=f"C{n - 3}", label=f"{n} sites")
        ax.legend(fontsize=8, loc="lower right")
    title = "Latency-redundancy frontier: ack latency vs. tolerated site failures"
    fig.suptitle(title, fontsize=11)
    fig.text(0.01, 0.01, setting, fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    for ext in ("png", "svg"):
        fig.savefig(out.with_suffix(f".{ext}"), dpi=130)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sets", help="comma-separated sets, each sites joined by +")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--rate", type=float, default=25.0, help="single orders/s from each site")
    p.add_argument("--route-factor", type=float, default=ROUTE_FACTOR)
    p.add_argument("--out", type=Path, default=Path("docs/frontier"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    sets = [tuple(s.split("+")) for s in args.sets.split(",")] if args.sets else SETS
    every = sorted({s for group in sets for s in group})
    msgs = [json.dumps(m).encode() for m in order_flow(400_000, 17)]
    msgs.reverse()  # popped from the end: in flow order
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="frontier-") as tmp:
        fabric = Fabric.start(every, Path(tmp), DelayMatrix.of(every, args.route_factor))
        try:
            if not fabric.namespaced:
                print(f"needs network namespaces: {fabric.describe()}", file=sys.stderr)
                return 2
            rtts = fabric.measure_rtts(3)
            for group in sets:
                rows += measure_set(fabric, group, rtts, msgs, args, Path(tmp))
        finally:
            fabric.stop()
    setting = (
        f"{fabric.describe()}; etcd heartbeat/election from the measured RTTs of each set; "
        f"{args.rate:g} single orders/s from every site to its own gateway for {args.seconds:g} s "
        "per leader placement; one 2-core machine shared by every process"
    )
    print("| sites | leader | ack p50 ms | ack p99 ms | floor p50 ms | log tolerance | "
          "committee facility tolerance | etcd heartbeat/election ms |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {'+'.join(r['sites'])} | {r['leader']} | {r['ack_p50_ms']:.1f} | "
            f"{r['ack_p99_ms']:.1f} | {r['floor_p50_ms']:.1f} | {r['tolerance'][0]} | "
            f"{r['tolerance'][1]} | {r['etcd'][0]}/{r['etcd'][1]} |"
        )
    print(f"({setting})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out, setting)
    print(f"plot: {args.out.with_suffix('.png')} and {args.out.with_suffix('.svg')}")
    if args.json:
        args.json.write_text(json.dumps({"setting": setting, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
