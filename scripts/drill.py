"""Failover drill: the seed's three configurations on one machine, one site SIGKILLed mid-flow.

    python scripts/drill.py [--runs N] [--json out.json]

Per configuration and run: start the sites, send a steady order flow (two clients, one order
per request, each retrying the same order id on another gateway when refused), SIGKILL one site
(its etcd member, node and gateway) at a random moment, keep sending, then restart the site and
measure. Figures: write unavailability (longest stretch without an acknowledgement from the
kill on), read unavailability (the same for successful reads, the client reading from any live
node), acknowledged orders lost (acks missing from the surviving log), whether the nodes' state
hashes agree after recovery, and the restarted node's catch-up time.

Emulated on one machine (say so when quoting): sites are processes on loopback (no WAN RTT);
"single-site" recovery is an automated restart standing in for manual intervention; in
"active-passive" the standby copies the primary's log asynchronously (a mirror polling every
10 ms, like ``etcdctl make-mirror``) and a monitor promotes it after 3 missed 100 ms probes.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from devnet.etcdcluster import start_cluster
from devnet.flow import OrderClients, order_flow
from devnet.http import http_json
from devnet.logdump import by_position, read_log
from devnet.nodes import make_sites
from validator.engine.codec import decode_object, encode_message
from validator.node.inputlog import Chunk, encode_chunk


def outage(times: list[float], t0: float) -> float:
    """Longest stretch without an event from ``t0`` (the kill) on: the gap from the kill to the
    first event after it, or any longer gap between events later in the run."""
    after = sorted(t for t in times if t > t0)
    if not after:
        return float("inf")
    return max(b - a for a, b in zip([t0, *after], after, strict=False))


def wait_agree(node_urls: list[str], timeout: float = 60) -> tuple[bool, float]:
    """Wait until the nodes report the same applied chunk count and state hash; (agree, time)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            got = [http_json(url + "/state_hash", timeout=1)[1] for url in node_urls]
            if len({(g["applied_chunk"], g["hash"]) for g in got}) == 1:
                return True, time.monotonic() - t0
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    return False, timeout


def lost(acked: list[tuple[int, int, dict[str, Any]]], log: list[Chunk], same_cluster: bool) -> int:
    """Acknowledged orders missing from the surviving log: at their exact position when the log
    is the cluster that acknowledged them, anywhere in it when it is a mirror (its revisions
    are its own)."""
    if same_cluster:
        lines = by_position(log)
        return sum(1 for r, i, m in acked if (r, i) not in lines or json.loads(lines[r, i]) != m)
    present = {line for c in log for line in c.lines}
    return sum(1 for _, _, m in acked if encode_message(decode_object(m)) not in present)


def run_replicated(
    names: list[str], root: Path, rng: random.Random, seconds: float
) -> dict[str, Any]:
    """single-site (one name) or active-active (three): one Raft cluster, a site per member."""
    cluster = start_cluster(names, root / "etcd")
    sites = make_sites(cluster, root, snapshot_every=10**6, batch_every=20, etcd_timeout=1.0)
    try:
        f = OrderClients(
            [s.gateway_url for s in sites.sites],
            order_flow(200_000, rng.randrange(10**6)),
            readers=[s.node_url for s in sites.sites],
        )
        f.start()
        time.sleep(rng.uniform(1.0, 2.0))
        victim = cluster.leader() if len(names) > 1 else names[0]
        killed = time.monotonic()
        sites.kill_site(victim)
        if len(names) == 1:  # nothing else can serve: the "manual" restart
            cluster.restart(victim)
            sites.start_node(sites.site(victim))
            sites.start_gateway(sites.site(victim))
        time.sleep(seconds)
        f.finish()
        if len(names) > 1:
            cluster.restart(victim)
            sites.start_node(sites.site(victim))
            sites.start_gateway(sites.site(victim))
        sites.wait_up(30)
        agree, catch_up = wait_agree([s.node_url for s in sites.sites])
        live = next(m for m in cluster.members if m.process is not None)
        return {
            "victim": victim,
            "write_rto_s": outage(f.ack_times, killed),
            "read_rto_s": outage(f.read_times, killed),
            "acked": len(f.acked),
            "acked_lost": lost(f.acked, read_log(live.client_url), same_cluster=True),
            "hashes_agree": agree,
            "catch_up_s": catch_up,
        }
    finally:
        sites.stop()
        cluster.stop()


def mirror(source: str, target: str, stop: threading.Event) -> None:
    """Copy the log from one etcd to another, in log order, until ``stop`` or the source dies
    (asynchronous replication: what was not copied yet when the source died is gone)."""
    done = 0  # source revision copied up to
    while not stop.is_set():
        try:
            for chunk in read_log(source, after=done, timeout=1.0):
                http_json(
                    target + "/v3/kv/put",
                    {
                        "key": base64.b64encode(chunk.key).decode(),
                        "value": base64.b64encode(encode_chunk(chunk.lines)).decode(),
                    },
                )
                done = chunk.revision
        except OSError:
            return
        time.sleep(0.01)


def run_active_passive(root: Path, rng: random.Random, seconds: float) -> dict[str, Any]:
    """A primary site serving; a standby with its own etcd, fed by an asynchronous mirror. After
    the failover the old primary comes back as the new standby: its own log may hold acknowledged
    orders the mirror never copied (counted as lost), so it starts empty and copies the new
    primary's log; its catch-up time is until its node's state equals the new primary's."""
    primary = start_cluster(["primary"], root / "p-etcd")
    standby = start_cluster(["standby"], root / "s-etcd")
    psites = make_sites(primary, root / "p", snapshot_every=10**6, batch_every=20, etcd_timeout=1.0)
    ssites = make_sites(
        standby, root / "s", gateways=False, snapshot_every=10**6, batch_every=20, etcd_timeout=1.0
    )
    stop, stop_back = threading.Event(), threading.Event()
    forward = threading.Thread(
        target=mirror, args=(primary.endpoints[0], standby.endpoints[0], stop)
    )
    forward.start()
    back: threading.Thread | None = None
    try:
        f = OrderClients(
            [psites.sites[0].gateway_url, ssites.sites[0].gateway_url],
            order_flow(200_000, rng.randrange(10**6)),
            readers=[psites.sites[0].node_url, ssites.sites[0].node_url],
        )
        f.start()
        time.sleep(rng.uniform(1.0, 2.0))
        killed = time.monotonic()
        psites.kill_site("primary")
        misses = 0
        while misses < 3:  # the monitor: 3 missed 100 ms probes
            try:
                http_json(psites.sites[0].gateway_url + "/health", timeout=0.1)
                misses = 0
            except OSError:
                misses += 1
            time.sleep(0.1)
        stop.set()
        forward.join()
        ssites.start_gateway(ssites.sites[0])  # promotion
        time.sleep(seconds)
        f.finish()
        acked_lost = lost(f.acked, read_log(standby.endpoints[0]), same_cluster=False)
        # The old primary rejoins as the standby, from nothing.
        old = psites.sites[0]
        shutil.rmtree(primary.members[0].data_dir)
        shutil.rmtree(psites.root / old.name)
        restarted = time.monotonic()
        primary.restart("primary")
        primary.wait_ready()
        back = threading.Thread(
            target=mirror, args=(standby.endpoints[0], primary.endpoints[0], stop_back)
        )
        back.start()
        psites.start_node(old)
        psites.wait_up()
        agree, _ = wait_agree([old.node_url, ssites.sites[0].node_url])
        return {
            "victim": "primary",
            "write_rto_s": outage(f.ack_times, killed),
            "read_rto_s": outage(f.read_times, killed),
            "acked": len(f.acked),
            "acked_lost": acked_lost,
            "hashes_agree": agree,
            "catch_up_s": time.monotonic() - restarted if agree else None,
        }
    finally:
        stop.set()
        stop_back.set()
        if back is not None:
            back.join()
        psites.stop()
        ssites.stop()
        primary.stop()
        standby.stop()


CONFIGS = {
    "single-site": lambda root, rng, s: run_replicated(["site1"], root, rng, s),
    "active-passive": run_active_passive,
    "active-active": lambda root, rng, s: run_replicated(["fra1", "ams1", "dal1"], root, rng, s),
}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return statistics.median(vals) if vals else None

    def worst(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return max(vals) if vals else None

    return {
        "runs": len(runs),
        "write_rto_median_s": med("write_rto_s"),
        "write_rto_max_s": worst("write_rto_s"),
        "read_rto_median_s": med("read_rto_s"),
        "acked_lost_total": sum(r["acked_lost"] for r in runs),
        "acked_total": sum(r["acked"] for r in runs),
        "hashes_agree": all(r["hashes_agree"] for r in runs),
        "catch_up_median_s": med("catch_up_s"),
    }


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="drills per configuration")
    parser.add_argument("--seconds", type=float, default=3.0, help="flow time after the kill")
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict[str, Any] = {}
    for name in args.only or list(CONFIGS):
        runs = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"drill-{name}-") as tmp:
                runs.append(CONFIGS[name](Path(tmp), rng, args.seconds))
            print(f"{name} run {i + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
        results[name] = {"summary": summary(runs), "runs": runs}
    print("| configuration | failure impact (measured) | recovery speed (measured) |")
    print("| --- | --- | --- |")
    for name, r in results.items():
        s = r["summary"]
        impact = (
            f"writes down {fmt(s['write_rto_median_s'])} (max {fmt(s['write_rto_max_s'])}), "
            f"reads down {fmt(s['read_rto_median_s'])}, "
            f"{s['acked_lost_total']} of {s['acked_total']} acked orders lost"
        )
        recovery = (
            f"hashes agree: {'yes' if s['hashes_agree'] else 'NO'}; "
            f"restarted site caught up in {fmt(s['catch_up_median_s'])}"
        )
        print(f"| {name} | {impact} | {recovery} |")
    print(
        f"(medians over {args.runs} run(s) per configuration; one machine, loopback, emulated "
        "sites: see the script's docstring)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
