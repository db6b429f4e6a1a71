"""The chain goes away for a while and comes back: every proof signed meanwhile waits in the
outbox and lands exactly once, in sequence order."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from devnet.localchain import LocalChain, start_chain
from redundancy.domains import Kind
from tests.attestor_sites import (
    AttestorProcess,
    Deployed,
    landed_proofs,
    make_site,
    register,
    wait_until,
)

# power re-signed every second with a long lifetime: proofs that must all survive the outage
FAST_POWER = {"power": "interval = 1\nlifetime = 3600"}


def _rows(outbox: Path) -> list[tuple[int, int, str, float]]:
    with sqlite3.connect(outbox) as db:
        return db.execute(
            "SELECT sequence, kind, state, signed_at FROM proofs ORDER BY sequence"
        ).fetchall()


def _pending(outbox: Path, kind: Kind, since: float) -> int:
    """Proofs of ``kind`` signed at or after ``since`` and still waiting in the outbox."""
    with sqlite3.connect(outbox) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM proofs WHERE state = 'pending' AND kind = ? AND signed_at >= ?",
            (int(kind), since),
        ).fetchone()
    return int(row[0])


def test_proofs_buffered_while_chain_is_down_land_once_in_order(
    chain: LocalChain, chain_state: Path, deployed: Deployed, tmp_path: Path
) -> None:
    site = make_site(tmp_path, "fra1", deployed, heartbeat=2, tweaks=FAST_POWER)
    register(deployed, site)
    proc = AttestorProcess(site)
    restarted: LocalChain | None = None
    try:
        wait_until(
            lambda: not deployed.registry.facility_status(site.facility_id).stale, 30, "fresh"
        )
        chain.stop()
        down_at = time.time()
        proc.wait_for("chain.unreachable", timeout=15)
        # at least 5 power proofs waiting (>= 5 s at one a second), long enough for heartbeats
        # (4 s lifetime) to run out meanwhile; waiting on the count itself keeps a loaded
        # machine, which signs less often, from ending the outage early. Only proofs signed
        # after down_at count: one signed just before the stop may still be waiting too
        wait_until(
            lambda: _pending(site.outbox, Kind.POWER, down_at) >= 5, 40, "a backlog of power proofs"
        )
        restarted = start_chain("anvil", port=chain.port, state_dir=chain_state)
        up_at = time.time()
        proc.wait_for("chain.recovered", timeout=30)
        # the backlog: everything signed so far (the daemon keeps signing a power proof every
        # second, so "the outbox was empty once" does not hold at the SIGTERM)
        mark = max(seq for seq, _, _, _ in _rows(site.outbox))
        wait_until(
            lambda: all(st != "pending" for q, _, st, _ in _rows(site.outbox) if q <= mark),
            30,
            "backlog drained",
        )
        assert proc.terminate() == 0
        landed = landed_proofs(deployed.registry, site.address)
    finally:
        if proc.proc.poll() is None:
            proc.kill()
        if restarted is not None:
            restarted.stop()

    rows = _rows(site.outbox)
    published = [seq for seq, _, state, _ in rows if state == "published"]
    on_chain = [x.proof.attestation.sequence for x in landed]
    # exactly the proofs the outbox calls published landed, once each, in sequence order
    assert on_chain == published
    assert len(set(on_chain)) == len(on_chain)
    # everything signed while the chain was down was published, except heartbeats whose
    # lifetime ran out, which were replaced by fresher ones instead of being sent to fail
    buffered = [r for r in rows if down_at <= r[3] < up_at]
    assert sum(1 for r in buffered if r[2] == "published" and r[1] == Kind.POWER) >= 5
    for seq, kind, state, _ in buffered:
        assert state == "published" or (state == "expired" and kind == Kind.HEALTH), (seq, state)
    assert {state for seq, _, state, _ in rows if seq <= mark} <= {"published", "expired"}
    expired = [seq for seq, _, state, _ in rows if state == "expired"]
    assert expired, "no heartbeat ran out during the outage: make it longer"
    fresh_heartbeats = [
        seq for seq, kind, state, _ in rows if kind == Kind.HEALTH and state == "published"
    ]
    assert max(fresh_heartbeats) > max(expired)
