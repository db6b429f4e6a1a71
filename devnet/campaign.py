"""A Jepsen-style fault campaign against the venue: sites as hosts, faults, and a checker.

    validator-campaign [--runs N] [--seed S] [--sites fra1,ams1,lon1] [--faults KIND,...]
                       [--only-run K] [--route-factor 1.5] [--no-namespaces] [--no-attestors]
                       [--json out.json] [--keep DIR]
    validator-campaign --cleanup [--all]

Every site (etcd member, validator node, gateway and, for clock faults, an attestor) runs in a
network namespace of its own; the links between sites go through delaying relays with the
one-way delays of the sites' coordinates (``devnet.fabric``, ``devnet.distance``), and etcd's
heartbeat and election timeout are tuned from the round trips measured through them. Each run
starts a fresh venue, sends a steady order flow from clients at every site (``devnet.history``),
strikes one fault (``devnet.nemesis``; the kinds are dealt round-robin in a seeded order, so N
runs cover every kind), heals it, lets the flow go on, quiesces, and checks the history against
the committed log (``devnet.checker``). A failed run prints how to reproduce it (seed, run,
schedule) and keeps its record. The table at the end gives per fault kind: runs, orders
acknowledged, lost, duplicated, refused-but-logged, split-brain acks, unknown outcomes and how
they resolved, and write/read unavailability.

``--cleanup`` removes namespaces (and the processes in them) that killed runs left behind: only
names with the harness's prefix whose owner process is gone (``--all``: every one of them).
Without root the sites fall back to loopback (no distance, no partitions) and every figure says
so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet import netns
from devnet.checker import RunRecord, Verdict, check
from devnet.distance import ROUTE_FACTOR, DelayMatrix
from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.fabric import Fabric, etcd_timing, gateway_tuning
from devnet.flow import order_flow
from devnet.history import History, RecordingClients, canonical
from devnet.http import http_json
from devnet.logdump import read_log, read_roots
from devnet.nemesis import FAMILIES, NEEDS_NAMESPACES, Fault, Nemesis, Struck, draw
from devnet.nodes import Sites, make_sites
from devnet.site_attestors import SiteAttestors, faketime_missing
from redundancy.errors import RedundancyError

DEFAULT_SITES = ("fra1", "ams1", "lon1")
BATCH_EVERY = 20
WRITE_DEADLINE = 3.0
SETTLE = 1.0
CLIENT_TIMEOUT = 2.0
AFTER_HEAL = 3.0


def outage(times: Sequence[float], t0: float, until: float) -> float:
    """Longest stretch in [t0, until] without an event (from ``t0``, the fault, on)."""
    marks = [t0, *sorted(t for t in times if t0 < t < until), until]
    return max(b - a for a, b in itertools.pairwise(marks))


@dataclass
class RunResult:
    run: int
    kind: str
    site: str
    detail: str
    verdict: Verdict
    write_unavailable_s: float
    read_unavailable_s: float
    victim_gap_s: float | None
    duration_s: float
    record_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILIES[self.kind]


class Campaign:
    def __init__(
        self,
        sites: Sequence[str],
        root: Path,
        seed: int,
        kinds: Sequence[str],
        route_factor: float = ROUTE_FACTOR,
        namespaces: bool = True,
        keep: Path | None = None,
        attestors: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        """``attestors``: start an attestor per site for clock faults (needs libfaketime)."""
        self.sites = list(sites)
        self.requested = list(kinds)
        self.root, self.seed, self.keep, self.log = root, seed, keep, log
        self.fabric = Fabric.start(
            sites, root / "fabric", DelayMatrix.of(sites, route_factor), namespaces
        )
        self.notes: list[str] = []
        self.last_record: RunRecord | None = None
        """The checker's input of the latest run (tests feed it to the checker altered)."""
        if not self.fabric.namespaced:
            kinds = [k for k in kinds if k not in NEEDS_NAMESPACES]
            self.notes.append(f"no partition faults: {self.fabric.fallback_reason}")
        self.attestors: SiteAttestors | None = None
        if attestors and faketime_missing() is None:
            try:
                self.attestors = SiteAttestors(self.fabric, root / "attestors")
            except BaseException:
                self.fabric.stop()
                raise
        elif attestors:
            self.notes.append(f"no clock faults: {faketime_missing()}")
        if self.attestors is None:
            kinds = [k for k in kinds if k != "clock-jump"]
        if not kinds:
            raise ValueError("no fault kind can run here")
        order = list(kinds)
        random.Random(seed).shuffle(order)
        self.kinds = order
        self.rtts = self.fabric.measure_rtts()
        self.heartbeat_ms, self.election_ms = etcd_timing(self.rtts)
        self.tuning = gateway_tuning(self.rtts)
        self.attempt_timeout = float(self.tuning["write_attempt_timeout"])

    def describe(self) -> str:
        return (
            f"{self.fabric.describe()}; etcd heartbeat {self.heartbeat_ms} ms, election timeout "
            f"{self.election_ms} ms (from the largest measured RTT "
            f"{max(self.rtts.values(), default=0):.1f} ms), pre-vote on; gateway write attempt "
            f"{self.attempt_timeout * 1000:.0f} ms, {self.tuning['max_inflight_writes']} in "
            f"flight (another from {self.tuning['pipeline_min_messages']} waiting messages), "
            f"deadline {WRITE_DEADLINE:g} s, settle "
            f"{SETTLE:g} s; clients time out after {CLIENT_TIMEOUT:g} s"
            + "".join(f"; {note}" for note in self.notes)
        )

    def stop(self) -> None:
        if self.attestors is not None:
            self.attestors.stop()
        self.fabric.stop()

    def fault_for(self, run: int) -> tuple[str, random.Random]:
        return self.kinds[run % len(self.kinds)], random.Random(f"{self.seed}-{run}")

    # ------------------------------------------------------------------ one run

    def _start_venue(self, root: Path) -> tuple[EtcdCluster, Sites]:
        cluster = start_cluster(
            self.sites,
            root / "etcd",
            self.heartbeat_ms,
            self.election_ms,
            placements=self.fabric.placements,
            pre_vote=True,
        )
        try:
            venue = make_sites(
                cluster,
                root / "nodes",
                nearest=self.fabric.matrix.nearest,
                snapshot_every=10**6,  # never compact: the checker reads the whole log
                batch_every=BATCH_EVERY,
                etcd_timeout=1.0,
                write_deadline=WRITE_DEADLINE,
                write_settle_timeout=SETTLE,
                **self.tuning,
                log_level="warning",
            )
        except BaseException:
            cluster.stop()
            raise
        return cluster, venue

    def run(self, index: int) -> RunResult:
        kind, rng = self.fault_for(index)
        fault = draw(kind, rng, self.election_ms / 1000)
        root = self.root / f"run-{index}"
        started = time.monotonic()
        with self.fabric.observe():
            cluster, venue = self._start_venue(root)
            try:
                return self._run(index, fault, rng, cluster, venue, root, started)
            finally:
                self.fabric.heal()
                venue.stop()
                cluster.stop()
                if self.attestors is not None:
                    self.attestors.reset()
                shutil.rmtree(root, ignore_errors=True)

    def _run(
        self,
        index: int,
        fault: Fault,
        rng: random.Random,
        cluster: EtcdCluster,
        venue: Sites,
        root: Path,
        started: float,
    ) -> RunResult:
        matrix = self.fabric.matrix
        flow = canonical(order_flow(60_000, rng.randrange(10**6)))

        def gateways(site: str) -> list[tuple[str, str]]:
            order = [site, *matrix.nearest(site)]
            return [(o, venue.site(o).gateway_url_from(site)) for o in order]

        def readers(site: str) -> list[tuple[str, str]]:
            return [(o, venue.site(o).node_url_from(site)) for o in [site, *matrix.nearest(site)]]

        nemesis = Nemesis(
            self.fabric, cluster, venue, rng, self.attestors.offset if self.attestors else None
        )
        clients = RecordingClients(
            self.sites, flow, gateways, self.fabric.enter, readers=readers, timeout=CLIENT_TIMEOUT
        ).start()
        try:
            time.sleep(fault.at)
            struck = nemesis.strike(fault)
            time.sleep(max(0.0, struck.start + fault.duration - time.monotonic()))
            nemesis.heal(struck)
            time.sleep(AFTER_HEAL)
        finally:
            history = clients.finish()
        flow_end = time.monotonic()
        clock = self.attestors.check(struck) if self.attestors is not None else None
        record = self._record(index, fault, struck, history, cluster, venue)
        self.last_record = record
        verdict = check(record)
        problems = verdict.problems()
        extra: dict[str, Any] = {}
        if clock is not None:
            problems += clock[0]
            extra = {"clock_problems": clock[0], "clock": clock[1]}
        result = RunResult(
            index,
            fault.kind,
            struck.site,
            struck.detail,
            verdict,
            outage(history.acks(), struck.start, flow_end),
            outage([t for t, _ in history.reads], struck.start, flow_end),
            self._victim_gap(history, struck, flow_end),
            time.monotonic() - started,
            extra=extra,
        )
        if problems:
            path = (self.keep or self.root.parent) / f"campaign-{self.seed}-run-{index}.json"
            path.write_text(json.dumps(record.to_json()))
            result.record_path = str(path)
            self.log(
                f"run {index} FAILED ({fault.kind} on {struck.site}): "
                + "; ".join(problems[:10])
                + f"\n  reproduce: validator-campaign --sites {','.join(self.sites)} "
                f"--faults {','.join(sorted(self.requested))} --seed {self.seed} --only-run "
                f"{index} (schedule {json.dumps(fault.to_json())}; leader and follower targets "
                "are resolved when the fault strikes)"
                f"\n  record: {path}"
            )
        return result

    def _victim_gap(self, history: History, struck: Struck, until: float) -> float | None:
        """For a paused member: the longest wait for an ack through the victim site's own
        gateway (the regression: it stalled for the whole pause)."""
        if struck.fault.kind != "pause-member":
            return None
        own = [
            op.complete
            for op in history.ops
            if op.result == "ok" and op.site == struck.site and op.gateway == struck.site
        ]
        return outage(own, struck.start, min(until, struck.end))

    def _record(
        self,
        index: int,
        fault: Fault,
        struck: Struck,
        history: History,
        cluster: EtcdCluster,
        venue: Sites,
    ) -> RunRecord:
        """Quiesce (every write settled, every node at the end of the log), then read it all."""
        time.sleep(WRITE_DEADLINE + SETTLE + 0.5)
        deadline = time.monotonic() + 90
        while True:
            endpoint = next(m.client_url for m in cluster.members if m.process is not None)
            chunks = read_log(endpoint)
            states: dict[str, dict[str, Any]] = {}
            for s in venue.sites:
                try:
                    states[s.name] = http_json(s.node_url + "/state_hash", timeout=2)[1]
                except OSError as exc:
                    states[s.name] = {"error": str(exc)}
            caught_up = all(st.get("applied_chunk") == len(chunks) for st in states.values())
            if caught_up or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.3)  # the last boundary's roots
        roots = read_roots(endpoint)
        window = struck.window()
        return RunRecord(
            seed=self.seed,
            run=index,
            schedule=[fault.to_json() | {"site": struck.site, "detail": struck.detail}],
            sites=self.sites,
            batch_every=BATCH_EVERY,
            ops=history.ops,
            log=[(c.key.decode(), c.revision, [line.decode() for line in c.lines]) for c in chunks],
            roots=roots,
            nodes=states,
            windows=[window] if window else [],
            grace=max(self.fabric.matrix.one_way_us.values(), default=0) / 1e6 + 0.1,
        )


# ---------------------------------------------------------------------- report


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {_pct(values, 0.99):.2f} / {max(values):.2f}"


def table(results: list[RunResult]) -> list[str]:
    rows = [
        "| fault | runs | passed | acked | lost | duplicates | refused but logged | split-brain "
        "acks | unknown outcomes (logged / not) | second copies rejected | fenced writes | "
        "write unavailable s (p50 / p99 / max) | read unavailable s (p50 / p99 / max) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    kinds = sorted({r.kind for r in results}, key=lambda k: (FAMILIES[k], k))
    for kind in [*kinds, "all"]:
        rs = [r for r in results if kind in ("all", r.kind)]
        v = [r.verdict for r in rs]
        passed = sum(1 for r in rs if r.verdict.ok and not r.extra.get("clock_problems"))
        name = "**all**" if kind == "all" else f"{FAMILIES[kind]}: {kind}"
        rows.append(
            f"| {name} | {len(rs)} | {passed} | {sum(x.acked for x in v):,} | "
            f"{sum(len(x.lost) for x in v)} | {sum(len(x.duplicates) for x in v)} | "
            f"{sum(len(x.lies) for x in v)} | {sum(len(x.split_brain) for x in v)} | "
            f"{sum(x.unknown for x in v)} ({sum(x.unknown_logged for x in v)} / "
            f"{sum(x.unknown_not_logged for x in v)}) | {sum(x.extra_copies for x in v)} | "
            f"{sum(x.fenced_chunks for x in v)} | "
            f"{_fmt([r.write_unavailable_s for r in rs])} | "
            f"{_fmt([r.read_unavailable_s for r in rs])} |"
        )
    return rows


def goals(results: list[RunResult], campaign: Campaign) -> list[str]:
    """The issue's goals, as far as these runs show them."""
    lines = []
    v = [r.verdict for r in results]
    kinds = sorted({r.kind for r in results})
    lost = sum(len(x.lost) for x in v)
    dup = sum(len(x.duplicates) for x in v)
    split = sum(len(x.split_brain) for x in v)
    lines.append(
        f"safety: {lost} acknowledged orders lost, {dup} duplicates, {split} split-brain acks, "
        f"{sum(len(x.lies) for x in v)} refused-but-logged over {len(results)} runs covering "
        f"{len(kinds)} fault kinds (goal: 0, 0, 0 over >= 200 runs covering every kind): "
        + ("met" if not (lost or dup or split) and len(results) >= 200 else "not shown")
    )
    rto = [r.write_unavailable_s for r in results if r.kind == "partition-leader"]
    if rto:
        matrix = campaign.fabric.matrix
        largest = max(matrix.quorum_rtt_us(s) for s in matrix.sites) / 1e6
        goal = campaign.election_ms / 1000 + 2 * largest
        p99 = _pct(rto, 0.99)
        lines.append(
            f"write RTO over {len(rto)} leader-site partitions: "
            f"p50 {statistics.median(rto):.2f} s, "
            f"p99 {p99:.2f} s, max {max(rto):.2f} s; goal p99 <= election timeout "
            f"{campaign.election_ms / 1000:g} s + 2 x largest quorum RTT {largest * 1000:.0f} ms "
            f"= {goal:.2f} s over >= 20: "
            + ("met" if p99 <= goal and len(rto) >= 20 else "NOT met" if p99 > goal else "too few")
        )
        # The goal above lies below raft's median detection time (each follower's timeout is
        # drawn from [ET, 2 ET)); the bound raft itself gives, beside it (docs/sites-as-hosts.md).
        raft = 2 * campaign.election_ms / 1000 + 2 * largest
        lines.append(
            f"write RTO against raft's own bound, 2 x election timeout + 2 x largest quorum RTT "
            f"= {raft:.2f} s: {sum(x <= raft for x in rto)} of {len(rto)} within, "
            f"p95 {_pct(rto, 0.95):.2f} s"
        )
    for role in ("follower", "leader"):
        gaps = [
            r.victim_gap_s
            for r in results
            if r.victim_gap_s is not None and r.detail == f"({role})"
        ]
        if gaps:
            lines.append(
                f"paused etcd {role} (regression: its site's gateway stalled for the whole "
                f"pause): longest wait for an ack through the victim site's own gateway p50 "
                f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s over {len(gaps)} pauses"
                + (" (includes the election)" if role == "leader" else "")
            )
    return lines


def write_json(
    path: Path, seed: int, sites: list[str], campaign: Campaign, results: list[RunResult]
) -> None:
    path.write_text(
        json.dumps(
            {
                "seed": seed,
                "sites": sites,
                "setting": campaign.describe(),
                "matrix": campaign.fabric.matrix.to_json(),
                "rtts_ms": {f"{a}>{b}": v for (a, b), v in campaign.rtts.items()},
                "table": table(results),
                "goals": goals(results, campaign),
                "runs": [
                    {
                        "run": r.run,
                        "kind": r.kind,
                        "site": r.site,
                        "detail": r.detail,
                        "ok": r.verdict.ok and not r.extra.get("clock_problems"),
                        "verdict": r.verdict.__dict__,
                        "write_unavailable_s": r.write_unavailable_s,
                        "read_unavailable_s": r.read_unavailable_s,
                        "victim_gap_s": r.victim_gap_s,
                        "duration_s": r.duration_s,
                        "record": r.record_path,
                        **r.extra,
                    }
                    for r in results
                ],
            },
            indent=1,
            default=str,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="validator-campaign",
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--runs", type=int, default=len(FAMILIES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", default=",".join(DEFAULT_SITES))
    parser.add_argument("--faults", default=",".join(FAMILIES), help="comma-separated kinds")
    parser.add_argument("--only-run", type=int, help="run only this run of the seed")
    parser.add_argument("--route-factor", type=float, default=ROUTE_FACTOR)
    parser.add_argument("--no-namespaces", action="store_true", help="loopback, no distance")
    parser.add_argument("--no-attestors", action="store_true", help="no clock faults")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="where failed runs' records go")
    parser.add_argument("--cleanup", action="store_true", help="remove stale namespaces, exit")
    parser.add_argument("--all", action="store_true", help="with --cleanup: every owner's")
    args = parser.parse_args(argv)
    if args.cleanup:
        removed = netns.cleanup(every_owner=args.all)
        names = f": {', '.join(removed)}" if removed else ""
        print(f"removed {len(removed)} namespace(s){names}")
        return 0
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C: the namespaces, relays and processes go
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAMILIES]
    if unknown:
        parser.error(f"unknown fault kind(s) {unknown}; known: {', '.join(FAMILIES)}")
    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="campaign-") as tmp:
        campaign = Campaign(
            sites,
            Path(tmp),
            args.seed,
            kinds,
            args.route_factor,
            namespaces=not args.no_namespaces,
            keep=args.keep,
            attestors="clock-jump" in kinds and not args.no_attestors,
        )
        try:
            print(f"campaign seed {args.seed}: {campaign.describe()}", flush=True)
            print(f"fault order: {', '.join(campaign.kinds)}", flush=True)
            indices = [args.only_run] if args.only_run is not None else range(args.runs)
            results = []
            errors = 0
            for i in indices:
                try:
                    r = campaign.run(i)
                except (OSError, RedundancyError, TimeoutError, subprocess.SubprocessError) as exc:
                    # the harness could not run this one (say, a process did not start in
                    # time on the loaded machine): counted and shown, never taken for a pass
                    errors += 1
                    print(f"run {i}: HARNESS ERROR ({campaign.fault_for(i)[0]}): {exc!r}")
                    continue
                results.append(r)
                print(
                    f"run {i}: {r.kind} on {r.site} {r.detail} -> "
                    f"{'ok' if r.verdict.ok and not r.extra.get('clock_problems') else 'FAILED'}, "
                    f"{r.verdict.acked} acked, {r.verdict.unknown} unknown, write unavailable "
                    f"{r.write_unavailable_s:.2f} s, read {r.read_unavailable_s:.2f} s"
                    + (f", victim gateway gap {r.victim_gap_s:.2f} s" if r.victim_gap_s else "")
                    + (f", attestor: {json.dumps(r.extra['clock'])}" if "clock" in r.extra else "")
                    + f" ({r.duration_s:.0f} s)",
                    flush=True,
                )
                if args.json:  # as it goes: a long campaign cut short keeps what it measured
                    write_json(args.json, args.seed, sites, campaign, results)
        finally:
            campaign.stop()
    if errors:
        print(f"{errors} run(s) could not be carried out by the harness (see above)")
    for row in table(results):
        print(row)
    print(f"({campaign.describe()})")
    for line in goals(results, campaign):
        print(line)
    if args.json:
        write_json(args.json, args.seed, sites, campaign, results)
    passed = all(r.verdict.ok and not r.extra.get("clock_problems") for r in results)
    return 0 if passed and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
