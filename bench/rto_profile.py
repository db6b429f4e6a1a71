"""Where a leader-site partition's write outage goes: detection, election, re-route, first ack.

    sudo python bench/rto_profile.py [--runs 10] [--seed 1] [--sites fra1,ams1,lon1]
                                     [--json out.json]

Runs the campaign's ``partition-leader`` fault (``devnet.campaign``: sites as hosts at their
emulated distances, the same order flow, the same etcd and gateway tuning, the checker) while the
observer seat polls every member's ``maintenance/status`` (one thread per member, never delayed
by the relays) to time the failover's steps from the moment the leader's site is cut off:

- **candidate**: a majority-side member has moved to a higher term (raft's randomized election
  timeout, ``[ET, 2 ET)``, has run out on it and its pre-vote won);
- **leader**: a majority-side member names a new leader;
- **write unavailable**: the campaign's figure, the longest gap between acks from the cut on:
  its start (the last ack of a write committed before the cut) and its end (the first ack of a
  write committed by the new leader: the gateway re-sent it and saw the commit).

Prints one line per run and the medians; ``--json`` keeps every run's steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from devnet.campaign import Campaign
from devnet.etcdcluster import EtcdCluster
from devnet.nodes import Sites


class _Watched(Campaign):
    """The campaign with a status poller on each run's etcd cluster."""

    polls: list[tuple[float, str, int, str, str]]
    """(time, member, raft term, leader id it names, its own id)."""

    def _start_venue(self, root: Path) -> tuple[EtcdCluster, Sites]:
        cluster, venue = super()._start_venue(root)
        self.polls = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(cluster, m.name), daemon=True)
            for m in cluster.members
        ]
        for t in self._threads:
            t.start()
        return cluster, venue

    def _poll(self, cluster: EtcdCluster, name: str) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            st = cluster.status(name, timeout=0.2)
            if st is not None:
                self.polls.append(
                    (
                        (sent + time.monotonic()) / 2,
                        name,
                        int(st.get("raftTerm", 0)),
                        str(st.get("leader", "0")),
                        str(st["header"]["member_id"]),  # type: ignore[index]
                    )
                )
            time.sleep(0.003)

    def stop_polling(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def steps(campaign: _Watched) -> dict[str, Any]:
    record = campaign.last_record
    assert record is not None and record.windows
    window = record.windows[0]
    cut = set(window.minority)
    # from the first link cut (the campaign's outage counts from the strike, a moment before)
    laid = [t for t, _, _, c in campaign.fabric.changes if c and t <= window.start]
    t0 = laid[-2 * (len(campaign.sites) - 1)]
    before = [p for p in campaign.polls if p[0] < t0]
    old_term = max(p[2] for p in before)
    first_term = min(p[2] for p in before)
    after = sorted(p for p in campaign.polls if p[0] >= t0 and p[1] not in cut)
    candidate = next((p[0] for p in after if p[2] > old_term), None)
    leader = next((p[0] for p in after if p[2] > old_term and p[3] not in ("0", "")), None)
    # the outage: the longest gap between acks from the cut on (the campaign's figure); its
    # last ack before is a write committed before the cut, its first ack after is the recovery
    acks = [t0, *sorted(op.complete for op in record.ops if op.result == "ok" and op.complete > t0)]
    gap = max(range(1, len(acks)), key=lambda k: acks[k] - acks[k - 1], default=None)
    last_before = None if gap is None else acks[gap - 1]
    first_after = None if gap is None else acks[gap]

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 4)

    return {
        "site": sorted(cut),
        "elections_before_cut": old_term - first_term,
        "cut_laid_s": since(window.start),
        "candidate_s": since(candidate),
        "leader_s": since(leader),
        "last_ack_before_s": since(last_before),
        "first_ack_after_s": since(first_after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", default="fra1,ams1,lon1")
    parser.add_argument(
        "--etcd-timing",
        help="HEARTBEAT_MS,ELECTION_MS instead of the campaign's (from the measured RTTs, floors "
        "30 and 300 ms)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rto-") as tmp:
        campaign = _Watched(
            sites, Path(tmp), args.seed, ["partition-leader"], attestors=False, log=print
        )
        if args.etcd_timing:
            heartbeat, election = (int(x) for x in args.etcd_timing.split(","))
            campaign.heartbeat_ms, campaign.election_ms = heartbeat, election
        try:
            print(f"rto profile seed {args.seed}: {campaign.describe()}", flush=True)
            for i in range(args.runs):
                try:
                    result = campaign.run(i)
                finally:
                    campaign.stop_polling()
                row = steps(campaign) | {
                    "run": i,
                    "ok": result.verdict.ok,
                    "write_unavailable_s": round(result.write_unavailable_s, 4),
                }
                rows.append(row)
                print(
                    f"run {i}: leader site {row['site']} cut (in {row['cut_laid_s']} s); "
                    f"candidate {row['candidate_s']} s, "
                    f"new leader {row['leader_s']} s, acks stop {row['last_ack_before_s']} s, "
                    f"resume {row['first_ack_after_s']} s, write "
                    f"unavailable {row['write_unavailable_s']} s, checker "
                    f"{'ok' if row['ok'] else 'FAILED'}, "
                    f"{row['elections_before_cut']} election(s) in the calm before the cut",
                    flush=True,
                )
        finally:
            campaign.stop()
    keys = ("candidate_s", "leader_s", "last_ack_before_s", "first_ack_after_s")
    for key in (*keys, "write_unavailable_s"):
        values = sorted(r[key] for r in rows if r[key] is not None)
        if values:
            print(
                f"{key}: median {statistics.median(values):.3f}, min {values[0]:.3f}, "
                f"max {values[-1]:.3f} over {len(values)}"
            )
    gaps = [
        r["first_ack_after_s"] - r["leader_s"]
        for r in rows
        if r["first_ack_after_s"] is not None and r["leader_s"] is not None
    ]
    if gaps:
        print(f"new leader -> first ack: median {statistics.median(gaps):.3f} s")
    spurious = sum(r["elections_before_cut"] for r in rows)
    print(f"elections while nothing failed (start to cut): {spurious} over {len(rows)} runs")
    if args.json:
        args.json.write_text(
            json.dumps({"seed": args.seed, "setting": campaign.describe(), "runs": rows}, indent=1)
        )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
