"""Failover drill: the seed's three configurations on one machine, one site SIGKILLed mid-flow.

    python scripts/drill.py [--runs N] [--only CONFIG] [--seed S] [--geo] [--json out.json]
    python scripts/drill.py --only self-heal [--runs N] [--heartbeat S] [--venue]
    python scripts/drill.py --only predicted [--runs N]      # opt in: real NUT, loopback only

``--only self-heal`` runs the self-heal drill instead (``devnet.selfheal``): a committee site's
attestor SIGKILLed, its heartbeat lapsing on-chain, and a keeper's new committee; printed beside
the goal of two heartbeat intervals plus three blocks.

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

``--geo`` runs every drill twice, interleaved: on loopback as above, and with the sites as
hosts at their real distances (``devnet.fabric``: a network namespace per site, delaying relays
with one-way delays from the sites' coordinates; single-site at fra1, active-passive fra1 ->
ams1, active-active fra1, ams1, dal1). Clients, the mirror and the monitor then sit at sites
and reach the others through the relays; etcd's heartbeat and election timeout come from the
round trips measured through them (printed). The table puts both side by side.

``--only predicted`` (issue 14; run only when named) is a failure the telemetry sees coming:
three sites on loopback, each node and gateway watching its UPS through real NUT (``devnet.ups``);
per run the same kill twice on fresh sites with the same draws, the etcd leader's site SIGKILLed
unannounced, then with its UPS put on battery ``WARNING_S`` (5 s) before. Figures: write
unavailability of the unannounced kill, of the announced one (whole episode from the
announcement, from the kill on, and during the warning), the flow's noise floor (the longest
stretch without an acknowledgement while nothing fails, as long a window as after the kill), how
soon leadership left the site and its gateway refused new orders; the goal is printed beside
them (announced p99 <= 1/10 of the unannounced p99).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet.distance import ROUTE_FACTOR, DelayMatrix
from devnet.etcdcluster import start_cluster
from devnet.fabric import Fabric, etcd_timing, gateway_tuning
from devnet.flow import OrderClients, order_flow
from devnet.http import http_json
from devnet.logdump import by_position, read_log
from devnet.nodes import make_sites
from devnet.selfheal import run_self_heal, summarise
from validator.engine.codec import decode_object, encode_message
from validator.node.inputlog import Chunk, encode_chunk


def outage(times: list[float], t0: float) -> float:
    """Longest stretch without an event from ``t0`` (the kill) on: the gap from the kill to the
    first event after it, or any longer gap between events later in the run."""
    after = sorted(t for t in times if t > t0)
    if not after:
        return float("inf")
    return max(b - a for a, b in zip([t0, *after], after, strict=False))


def worst_gap_at(times: list[float], t0: float) -> float | None:
    """Where (seconds after ``t0``) the longest stretch ``outage`` measures begins."""
    after = sorted(t for t in times if t > t0)
    if not after:
        return None
    gaps = [(b - a, a - t0) for a, b in zip([t0, *after], after, strict=False)]
    return max(gaps)[1]


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


@dataclass
class Geo:
    """Sites as hosts at their distances, shared by every drill of a ``--geo`` run."""

    fabric: Fabric
    rtts: dict[tuple[str, str], float]

    def timing(self, names: list[str]) -> tuple[int, int]:
        return etcd_timing({k: v for k, v in self.rtts.items() if set(k) <= set(names)})

    def tuning(self, names: list[str]) -> dict[str, Any]:
        return gateway_tuning({k: v for k, v in self.rtts.items() if set(k) <= set(names)})

    def order(self, site: str, names: list[str]) -> list[str]:
        return [site, *(o for o in self.fabric.matrix.nearest(site) if o in names)]


def _observe(geo: Geo | None) -> contextlib.AbstractContextManager[None]:
    return geo.fabric.observe() if geo is not None else contextlib.nullcontext()


def run_replicated(
    names: list[str], root: Path, rng: random.Random, seconds: float, geo: Geo | None = None
) -> dict[str, Any]:
    """single-site (one name) or active-active (three): one Raft cluster, a site per member."""
    with _observe(geo):
        return _run_replicated(names, root, rng, seconds, geo)


def _run_replicated(
    names: list[str], root: Path, rng: random.Random, seconds: float, geo: Geo | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if geo is None:
        cluster = start_cluster(names, root / "etcd")
    else:
        heartbeat, election = geo.timing(names)
        extra = {"heartbeat_ms": heartbeat, "election_ms": election}
        cluster = start_cluster(
            names, root / "etcd", heartbeat, election, placements=geo.fabric.placements
        )
        extra["gateway"] = geo.tuning(names)
    sites = make_sites(
        cluster,
        root,
        nearest=(lambda s: geo.order(s, names)[1:]) if geo is not None else None,
        snapshot_every=10**6,
        batch_every=20,
        etcd_timeout=1.0,
        **(extra["gateway"] if geo else {}),
    )
    try:

        def place(k: int) -> list[str]:
            assert geo is not None
            site = names[k % len(names)]
            geo.fabric.enter(site)
            return [sites.site(o).gateway_url_from(site) for o in geo.order(site, names)]

        def place_reader() -> list[str]:
            assert geo is not None
            geo.fabric.enter(names[0])
            return [sites.site(o).node_url_from(names[0]) for o in geo.order(names[0], names)]

        f = OrderClients(
            [s.gateway_url for s in sites.sites],
            order_flow(200_000, rng.randrange(10**6)),
            readers=[s.node_url for s in sites.sites],
            place=place if geo is not None else None,
            place_reader=place_reader if geo is not None else None,
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
            **extra,
        }
    finally:
        sites.stop()
        cluster.stop()


def mirror(
    source: str, target: str, stop: threading.Event, enter: Callable[[], None] | None = None
) -> None:
    """Copy the log from one etcd to another, in log order, until ``stop`` or the source dies
    (asynchronous replication: what was not copied yet when the source died is gone). ``enter``
    first moves the copying thread to the target's site (sites as hosts)."""
    if enter is not None:
        enter()
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


def run_active_passive(
    root: Path, rng: random.Random, seconds: float, geo: Geo | None = None
) -> dict[str, Any]:
    """A primary site serving; a standby with its own etcd, fed by an asynchronous mirror. After
    the failover the old primary comes back as the new standby: its own log may hold acknowledged
    orders the mirror never copied (counted as lost), so it starts empty and copies the new
    primary's log; its catch-up time is until its node's state equals the new primary's."""
    with _observe(geo):
        return _run_active_passive(root, rng, seconds, geo)


def _run_active_passive(
    root: Path, rng: random.Random, seconds: float, geo: Geo | None
) -> dict[str, Any]:
    p_name, s_name = ("fra1", "ams1") if geo is not None else ("primary", "standby")
    placements = geo.fabric.placements if geo is not None else None
    primary = start_cluster([p_name], root / "p-etcd", placements=placements)
    standby = start_cluster([s_name], root / "s-etcd", placements=placements)
    psites = make_sites(primary, root / "p", snapshot_every=10**6, batch_every=20, etcd_timeout=1.0)
    ssites = make_sites(
        standby, root / "s", gateways=False, snapshot_every=10**6, batch_every=20, etcd_timeout=1.0
    )
    old, new = psites.sites[0], ssites.sites[0]

    def at(site: str) -> Callable[[], None] | None:
        return (lambda: geo.fabric.enter(site)) if geo is not None else None

    stop, stop_back = threading.Event(), threading.Event()
    forward = threading.Thread(
        target=mirror,
        args=(
            primary.members[0].client_url_from(s_name),
            standby.members[0].client_url,
            stop,
            at(s_name),
        ),
    )
    forward.start()
    back: threading.Thread | None = None
    try:

        def place(k: int) -> list[str]:
            assert geo is not None
            site = (p_name, s_name)[k % 2]
            geo.fabric.enter(site)
            return [old.gateway_url_from(site), new.gateway_url_from(site)]

        def place_reader() -> list[str]:
            assert geo is not None
            geo.fabric.enter(s_name)
            return [old.node_url_from(s_name), new.node_url_from(s_name)]

        f = OrderClients(
            [old.gateway_url, new.gateway_url],
            order_flow(200_000, rng.randrange(10**6)),
            readers=[old.node_url, new.node_url],
            place=place if geo is not None else None,
            place_reader=place_reader if geo is not None else None,
        )
        f.start()
        time.sleep(rng.uniform(1.0, 2.0))
        killed = time.monotonic()
        psites.kill_site(p_name)
        misses = 0
        with geo.fabric.at(s_name) if geo is not None else contextlib.nullcontext():
            while misses < 3:  # the monitor, at the standby: 3 missed 100 ms probes
                try:
                    http_json(old.gateway_url_from(s_name) + "/health", timeout=0.1)
                    misses = 0
                except OSError:
                    misses += 1
                time.sleep(0.1)
        stop.set()
        forward.join()
        ssites.start_gateway(new)  # promotion
        time.sleep(seconds)
        f.finish()
        acked_lost = lost(f.acked, read_log(standby.endpoints[0]), same_cluster=False)
        # The old primary rejoins as the standby, from nothing.
        shutil.rmtree(primary.members[0].data_dir)
        shutil.rmtree(psites.root / old.name)
        restarted = time.monotonic()
        primary.restart(p_name)
        primary.wait_ready()
        back = threading.Thread(
            target=mirror,
            args=(
                standby.members[0].client_url_from(p_name),
                primary.members[0].client_url,
                stop_back,
                at(p_name),
            ),
        )
        back.start()
        psites.start_node(old)
        psites.wait_up()
        agree, _ = wait_agree([old.node_url, new.node_url])
        return {
            "victim": p_name,
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


#: How long the predicted drill's victim runs on battery before it loses power.
WARNING_S = 5.0
PREDICTED_SITES = ["fra1", "ams1", "dal1"]


class StartUpError(RuntimeError):
    """Raised when a drill's sites did not come up (before anything was measured)."""


def _attempts(drill: Callable[[], dict[str, Any]], tries: int = 3) -> dict[str, Any]:
    """Run a drill, starting it again (fresh) when its sites did not come up."""
    for attempt in range(tries):
        try:
            return {**drill(), "start_retries": attempt}
        except StartUpError as exc:
            print(f"drill: sites did not come up ({exc}); starting again", file=sys.stderr)
    raise StartUpError(f"sites did not come up in {tries} tries")


def _watch_reaction(
    cluster: Any, victim: str, gateway: str, start: float
) -> dict[str, float | None]:
    """Seconds from ``start`` (the UPS going on battery) until etcd leadership left the victim
    and until its gateway refused new orders, both watched at once for ``WARNING_S``."""
    seen: dict[str, float | None] = {"leader_moved_s": None, "gateway_refusing_s": None}
    while time.monotonic() - start < WARNING_S and None in seen.values():
        with contextlib.suppress(OSError, KeyError, TypeError, TimeoutError):
            if seen["leader_moved_s"] is None and cluster.leader(1.0) != victim:
                seen["leader_moved_s"] = time.monotonic() - start
        with contextlib.suppress(OSError, KeyError, TypeError):
            health = http_json(gateway + "/health", timeout=0.5)[1]
            if seen["gateway_refusing_s"] is None and not health["accepting_new_orders"]:
                seen["gateway_refusing_s"] = time.monotonic() - start
        time.sleep(0.02)
    return seen


def _kill_drill(root: Path, rng: random.Random, seconds: float, announced: bool) -> dict[str, Any]:
    """Three sites with real NUT, each watching its UPS; the etcd leader's site is SIGKILLed,
    ``announced``: after its UPS has been on battery for ``WARNING_S`` seconds."""
    from devnet.ups import start_ups

    names = PREDICTED_SITES
    farm = start_ups(names, root / "nut")
    try:
        cluster = start_cluster(names, root / "etcd")
    except BaseException:
        farm.stop()
        raise
    watch = {n: {"ups": farm.name(n), "react_to": ["ups", "disk"]} for n in names}
    try:
        sites = make_sites(
            cluster, root, site_watch=watch, snapshot_every=10**6, batch_every=20, etcd_timeout=1.0
        )
    except BaseException as exc:
        cluster.stop()
        farm.stop()
        if isinstance(exc, TimeoutError):  # an overloaded machine: processes slow to start
            raise StartUpError(str(exc)) from exc
        raise
    try:
        f = OrderClients(
            [s.gateway_url for s in sites.sites],
            order_flow(200_000, rng.randrange(10**6)),
            readers=[s.node_url for s in sites.sites],
        )
        f.start()
        time.sleep(rng.uniform(1.0, 2.0))
        quiet = time.monotonic()
        time.sleep(seconds)  # the noise floor: the longest stretch without an ack, nothing failing
        victim = cluster.leader()
        gateway = sites.site(victim).gateway_url
        extra: dict[str, Any] = {}
        start = time.monotonic()
        if announced:
            farm.set_status(victim, "OB")
            extra.update(_watch_reaction(cluster, victim, gateway, start))
            time.sleep(max(0.0, start + WARNING_S - time.monotonic()))
        killed = time.monotonic()
        sites.kill_site(victim)
        time.sleep(seconds)
        f.finish()
        farm.set_status(victim, "OL")
        cluster.restart(victim)
        sites.start_node(sites.site(victim))
        sites.start_gateway(sites.site(victim))
        sites.wait_up(30)
        agree, catch_up = wait_agree([s.node_url for s in sites.sites])
        live = next(m for m in cluster.members if m.process is not None)
        return {
            "victim": victim,
            # from the announcement on (it includes the leadership transfer), or from the kill
            "write_rto_s": outage(f.ack_times, start),
            "write_rto_after_kill_s": outage(f.ack_times, killed),
            "first_ack_after_kill_s": min((t for t in f.ack_times if t > killed), default=killed)
            - killed,
            "worst_gap_at_s": worst_gap_at(f.ack_times, start),
            "quiet_gap_s": outage([t for t in f.ack_times if t < start], quiet),
            "warning_gap_s": outage([t for t in f.ack_times if t < killed], start)
            if announced
            else None,
            "killed_at_s": killed - start,
            "read_rto_s": outage(f.read_times, start),
            "acked": len(f.acked),
            "acked_lost": lost(f.acked, read_log(live.client_url), same_cluster=True),
            "hashes_agree": agree,
            "catch_up_s": catch_up,
            **extra,
        }
    finally:
        sites.stop()
        cluster.stop()
        farm.stop()


def run_predicted(
    root: Path, rng: random.Random, seconds: float, geo: Geo | None = None
) -> dict[str, Any]:
    """The same kill twice, on fresh sites: unannounced, then announced (the victim's UPS on
    battery ``WARNING_S`` seconds before). The run's standard figures are the announced kill's;
    ``unannounced`` holds the other's."""
    if geo is not None:
        raise SystemExit("drill: --only predicted runs on loopback only (no --geo)")
    seed = rng.randrange(10**9)
    tries = iter(range(100))
    unannounced = _attempts(
        lambda: _kill_drill(
            root / f"unannounced-{next(tries)}", random.Random(seed), seconds, False
        )
    )
    predicted = _attempts(
        lambda: _kill_drill(root / f"predicted-{next(tries)}", random.Random(seed), seconds, True)
    )
    return {**predicted, "unannounced": unannounced}


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile (the maximum below 100 values)."""
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def predicted_report(runs: list[dict[str, Any]]) -> list[str]:
    """The predicted drill's figures beside its goal."""
    unannounced = [r["unannounced"]["write_rto_s"] for r in runs]
    episode = [r["write_rto_s"] for r in runs]
    after_kill = [r["write_rto_after_kill_s"] for r in runs]
    warning = [r["warning_gap_s"] for r in runs]
    first_u = [r["unannounced"]["first_ack_after_kill_s"] for r in runs]
    first_a = [r["first_ack_after_kill_s"] for r in runs]
    quiet = [g for r in runs for g in (r["quiet_gap_s"], r["unannounced"]["quiet_gap_s"])]
    moved = [r["leader_moved_s"] for r in runs if r.get("leader_moved_s") is not None]
    refusing = [r["gateway_refusing_s"] for r in runs if r.get("gateway_refusing_s") is not None]
    goal = p99(unannounced) / 10
    lost_a = sum(r["acked_lost"] for r in runs)
    lost_u = sum(r["unannounced"]["acked_lost"] for r in runs)
    agree = all(r["hashes_agree"] and r["unannounced"]["hashes_agree"] for r in runs)

    def both(values: list[float]) -> str:
        return f"{fmt(p99(values))} / {fmt(statistics.median(values))}"

    def verdict(values: list[float]) -> str:
        return "met" if p99(values) <= goal else "NOT met"

    w = f"{WARNING_S:.0f} s"
    return [
        f"| predicted failure, {len(runs)} run(s): write unavailability = longest stretch without "
        "an acknowledgement | p99 / median | goal |",
        "| --- | --- | --- |",
        f"| nothing failing (the flow's noise floor, {len(quiet)} windows) | {both(quiet)} | |",
        f"| leader's site killed unannounced, from the kill on | {both(unannounced)} | |",
        f"| leader's site on battery {w} before the kill, whole episode (announcement on) | "
        f"{both(episode)} | <= {fmt(goal)} (1/10 of unannounced p99): {verdict(episode)} |",
        f"| the same, from the kill on | {both(after_kill)} | <= {fmt(goal)}: "
        f"{verdict(after_kill)} |",
        f"| the same, the {w} warning (leadership transfer, gateway refusing) | "
        f"{both(warning)} | |",
        f"| first acknowledgement after the kill, unannounced ; announced | {both(first_u)} ; "
        f"{both(first_a)} | |",
        f"| UPS on battery to etcd leadership off the site: max / median | "
        f"{fmt(max(moved, default=None))} / {fmt(statistics.median(moved) if moved else None)} "
        f"({len(moved)} of {len(runs)} within {w}) | before the kill |",
        f"| UPS on battery to its gateway refusing new orders: max / median | "
        f"{fmt(max(refusing, default=None))} / "
        f"{fmt(statistics.median(refusing) if refusing else None)} | before the kill |",
        f"| acknowledged orders lost (announced / unannounced) | {lost_a} of "
        f"{sum(r['acked'] for r in runs)} / {lost_u} of "
        f"{sum(r['unannounced']['acked'] for r in runs)} | 0 |",
        f"| state hashes agree after the site returns | {'yes' if agree else 'NO'} | yes |",
    ]


CONFIGS: dict[str, Callable[[Path, random.Random, float, Geo | None], dict[str, Any]]] = {
    "single-site": lambda root, rng, s, geo: run_replicated(
        ["fra1" if geo else "site1"], root, rng, s, geo
    ),
    "active-passive": run_active_passive,
    "active-active": lambda root, rng, s, geo: run_replicated(
        ["fra1", "ams1", "dal1"], root, rng, s, geo
    ),
    "predicted": run_predicted,
}
#: Run only when named with --only (each run is two drills with real NUT).
OPT_IN = {"predicted"}
GEO_SITES = ["fra1", "ams1", "dal1"]


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


def describe(name: str, s: dict[str, Any]) -> tuple[str, str]:
    impact = (
        f"writes down {fmt(s['write_rto_median_s'])} (max {fmt(s['write_rto_max_s'])}), "
        f"reads down {fmt(s['read_rto_median_s'])}, "
        f"{s['acked_lost_total']} of {s['acked_total']} acked orders lost"
    )
    recovery = (
        f"hashes agree: {'yes' if s['hashes_agree'] else 'NO'}; "
        f"restarted site caught up in {fmt(s['catch_up_median_s'])}"
    )
    return impact, recovery


def self_heal(runs: int, seed: int, heartbeat: int, out: Path | None, venue: bool) -> int:
    rng = random.Random(seed)
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="drill-self-heal-") as tmp:
            run = run_self_heal(Path(tmp), rng, heartbeat, venue=venue)
        results.append(run)
        print(f"self-heal run {i + 1}: {json.dumps(run)}", file=sys.stderr)
    s = summarise(results)
    print("| measure | measured | goal |")
    print("| --- | --- | --- |")
    print(f"| site death to stale on-chain, median | {s['kill_to_stale_median_s']:.2f} s | |")
    print(
        f"| stale to the keeper's committee on-chain, median | "
        f"{s['stale_to_selected_median_s']:.2f} s (max {s['stale_to_selected_blocks_max']} "
        "blocks) | |"
    )
    print(
        f"| site death to new committee on-chain | median {s['kill_to_selected_median_s']:.2f} s, "
        f"p99 {s['kill_to_selected_p99_s']:.2f} s; {s['met']} of {s['runs']} within the goal | "
        f"<= {s['goal_s']} s (2 heartbeats of {heartbeat} s + 3 one-second blocks) |"
    )
    if venue:
        print(
            f"| new committee on-chain to its first settlement batch | median "
            f"{s['selected_to_first_batch_median_s']:.2f} s, p99 "
            f"{s['selected_to_first_batch_p99_s']:.2f} s | <= {s['batch_goal_s']:.0f} s |"
        )
        print(
            f"| new committee on-chain to the dead etcd member removed | median "
            f"{s['selected_to_dead_removed_median_s']:.2f} s, p99 "
            f"{s['selected_to_dead_removed_p99_s']:.2f} s | |"
        )
        print(
            f"| new committee on-chain to the standby's etcd member voting (added as a learner, "
            f"started by its operator, caught up, promoted) | median "
            f"{s['selected_to_standby_voting_median_s']:.2f} s, p99 "
            f"{s['selected_to_standby_voting_p99_s']:.2f} s | |"
        )
        print(
            f"| new committee on-chain to membership changed and first batch, whichever is later "
            f"| median {s['selected_to_venue_median_s']:.2f} s, p99 "
            f"{s['selected_to_venue_p99_s']:.2f} s | <= {s['batch_goal_s']:.0f} s |"
        )
        print(f"| acknowledged orders lost | {s['orders_lost']} of {s['orders_acked']} | 0 |")
        print(f"| surviving nodes' state hashes agree | {'yes' if s['hashes_agree'] else 'NO'} "
              "| yes |")  # fmt: skip
        print(
            f"| batch submissions that reverted | {s['batch_submissions_reverted']} (of "
            f"{s['batches_committed']} batches committed) | 0 in a healthy run |"
        )
    killed = "whole site (attestor, etcd member, node, gateway)" if venue else "site's attestor"
    print(
        f"(emergency selection every run: {'yes' if s['all_emergency'] else 'NO'}; dead site "
        f"removed every run: {'yes' if s['all_victims_removed'] else 'NO'}; one machine, the "
        f"{killed} SIGKILLed; see devnet/selfheal.py)"
    )
    if out:
        out.write_text(json.dumps({"summary": s, "runs": results}, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="drills per configuration")
    parser.add_argument("--seconds", type=float, default=3.0, help="flow time after the kill")
    parser.add_argument("--only", choices=[*CONFIGS, "self-heal"], action="append")
    parser.add_argument(
        "--heartbeat", type=int, default=4, help="self-heal: the attestors' heartbeat interval"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--venue",
        action="store_true",
        help="self-heal: run the venue on the committee too, kill the whole site, time the new "
        "committee's first batch",
    )
    parser.add_argument(
        "--geo", action="store_true", help="also at emulated distances, interleaved, side by side"
    )
    parser.add_argument("--route-factor", type=float, default=ROUTE_FACTOR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.only and "self-heal" in args.only:
        return self_heal(args.runs, args.seed, args.heartbeat, args.json, args.venue)
    modes: list[str] = ["loopback", "geo"] if args.geo else ["loopback"]
    geo: Geo | None = None
    fabric_dir = tempfile.TemporaryDirectory(prefix="drill-fabric-")
    if args.geo:
        fabric = Fabric.start(
            GEO_SITES, Path(fabric_dir.name), DelayMatrix.of(GEO_SITES, args.route_factor)
        )
        if not fabric.namespaced:
            print(f"--geo: {fabric.describe()}", file=sys.stderr)
            fabric.stop()
            return 2
        geo = Geo(fabric, fabric.measure_rtts())
        rtts = ", ".join(f"{a}-{b} {v:.1f}" for (a, b), v in geo.rtts.items() if a < b)
        print(f"geo: {fabric.describe()}", file=sys.stderr)
        print(f"geo: measured round trips in ms: {rtts}", file=sys.stderr)
    rngs = {mode: random.Random(args.seed) for mode in modes}  # the same draws for both
    results: dict[str, dict[str, Any]] = {mode: {} for mode in modes}
    try:
        for name in args.only or [c for c in CONFIGS if c not in OPT_IN]:
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
            for i in range(args.runs):
                for mode in modes:  # interleaved: the machine's load falls on both alike
                    with tempfile.TemporaryDirectory(
                        prefix=f"drill-{name}-", ignore_cleanup_errors=True
                    ) as tmp:
                        run = CONFIGS[name](
                            Path(tmp), rngs[mode], args.seconds, geo if mode == "geo" else None
                        )
                    runs[mode].append(run)
                    print(f"{name} {mode} run {i + 1}: {json.dumps(run)}", file=sys.stderr)
            for mode in modes:
                results[mode][name] = {"summary": summary(runs[mode]), "runs": runs[mode]}
    finally:
        if geo is not None:
            geo.fabric.stop()
        fabric_dir.cleanup()
    if not args.geo:
        print("| configuration | failure impact (measured) | recovery speed (measured) |")
        print("| --- | --- | --- |")
        for name, r in results["loopback"].items():
            impact, recovery = describe(name, r["summary"])
            print(f"| {name} | {impact} | {recovery} |")
        if "predicted" in results["loopback"]:
            print()
            print("\n".join(predicted_report(results["loopback"]["predicted"]["runs"])))
    else:
        print(
            "| configuration | loopback: failure impact | loopback: recovery | "
            "emulated distance: failure impact | emulated distance: recovery |"
        )
        print("| --- | --- | --- | --- | --- |")
        for name in results["loopback"]:
            a = describe(name, results["loopback"][name]["summary"])
            b = describe(name, results["geo"][name]["summary"])
            print(f"| {name} | {a[0]} | {a[1]} | {b[0]} | {b[1]} |")
        assert geo is not None
        timings = {
            name: f"{first['heartbeat_ms']}/{first['election_ms']} ms"
            if "heartbeat_ms" in first
            else "30/300 ms"
            for name, run in results["geo"].items()
            for first in [run["runs"][0]]
        }
        print(
            f"(emulated distance: {geo.fabric.describe()}; etcd heartbeat/election from the "
            f"measured RTTs: {timings}; loopback: heartbeat 30 ms, election 300 ms)"
        )
    print(
        f"(medians over {args.runs} run(s) per configuration; one machine; loopback runs have no "
        "emulated distance: see the script's docstring)"
    )
    if args.json:
        args.json.write_text(json.dumps(results if args.geo else results["loopback"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
