"""The attestor is killed with SIGKILL while a batch transaction is in flight, and restarted:
nothing is lost, nothing is published twice."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from devnet.localchain import start_chain
from redundancy.chain import connect
from tests.attestor_sites import (
    AttestorProcess,
    deploy_registry,
    landed_proofs,
    make_site,
    register,
    wait_until,
)

BLOCK_TIME = 2  # a batch waits up to this long for its block: the window to kill it in


@pytest.mark.slow  # opt-in (-m slow): the random-points test below kills mid-publish too, in CI
def test_killed_mid_publish_and_restarted_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with start_chain("anvil", block_time=BLOCK_TIME) as chain:
        deployed = deploy_registry(chain, connect(chain.rpc_url), tmp_path)
        site = make_site(tmp_path, "fra1", deployed, heartbeat=3)
        register(deployed, site)
        killed_batches: list[tuple[int, int]] = []
        for _ in range(2):
            proc = AttestorProcess(site)
            try:
                batch = proc.wait_for("publish.batch", timeout=30)
                time.sleep(0.1)  # the transaction is sent; its block is not yet mined
                assert proc.kill() == -signal.SIGKILL
            finally:
                if proc.proc.poll() is None:
                    proc.kill()
            assert not any(e["event"] == "publish.receipt" for e in proc.events())
            killed_batches.append((batch["first_sequence"], batch["last_sequence"]))

        proc = AttestorProcess(site)
        try:
            proc.wait_for("publish.receipt", timeout=30)
            wait_until(lambda: proc.metrics()["attestor_outbox_depth"] == 0, 30, "drained")
            assert proc.terminate() == 0
        finally:
            if proc.proc.poll() is None:
                proc.kill()
        landed = landed_proofs(deployed.registry, site.address)

    with sqlite3.connect(site.outbox) as db:
        rows = db.execute("SELECT sequence, state FROM proofs ORDER BY sequence").fetchall()
    state = dict(rows)
    on_chain = [x.proof.attestation.sequence for x in landed]
    assert len(on_chain) == len(set(on_chain)), "a sequence landed twice"
    assert on_chain == sorted(on_chain)
    assert on_chain == [seq for seq, s in rows if s == "published"]
    assert set(state.values()) <= {"published", "expired"}, rows
    # the batches in flight at the kills landed, and are known as published
    for first, last in killed_batches:
        for seq in range(first, last + 1):
            assert state[seq] == "published", (seq, state[seq])
    # every sequence ever signed is accounted for: no gaps in the outbox
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))


def test_killed_at_random_points_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Five SIGKILLs at seeded random moments (signing, sending, waiting for a receipt,
    settling), a restart after each, under a one-second heartbeat and probes re-run every two
    seconds: every signed proof is published once or retired, none twice, none lost."""
    rng = random.Random(20261127)
    with start_chain("anvil", block_time=1) as chain:
        deployed = deploy_registry(chain, connect(chain.rpc_url), tmp_path)
        busy = {t: "interval = 2\nlifetime = 600" for t in ("power", "network", "provider")}
        site = make_site(tmp_path, "fra1", deployed, heartbeat=1, tweaks=busy)
        register(deployed, site)
        for _ in range(5):
            proc = AttestorProcess(site)
            try:
                proc.wait_for("daemon.started", timeout=30)
                time.sleep(rng.uniform(0.2, 4.0))
                assert proc.kill() == -signal.SIGKILL
            finally:
                if proc.proc.poll() is None:
                    proc.kill()
        proc = AttestorProcess(site)
        try:
            proc.wait_for("publish.receipt", timeout=30)
            # Every proof signed so far, the killed runs' included, leaves the outbox (the
            # daemon keeps signing new ones meanwhile: those may still wait at the end).
            mark = _query(site.outbox, "SELECT max(sequence) FROM proofs")
            wait_until(
                lambda: (
                    _query(
                        site.outbox,
                        "SELECT count(*) FROM proofs WHERE state = 'pending' "
                        f"AND sequence <= {mark}",
                    )
                    == 0
                ),
                60,
                f"every proof up to sequence {mark} published or retired",
            )
            assert proc.terminate() == 0
        finally:
            if proc.proc.poll() is None:
                proc.kill()
        landed = landed_proofs(deployed.registry, site.address)

    with sqlite3.connect(site.outbox) as db:
        rows = db.execute("SELECT sequence, state FROM proofs ORDER BY sequence").fetchall()
    on_chain = [x.proof.attestation.sequence for x in landed]
    assert len(on_chain) == len(set(on_chain)), "a sequence landed twice"
    assert on_chain == [seq for seq, s in rows if s == "published"]
    assert {s for seq, s in rows if seq <= mark} <= {"published", "expired", "rejected"}, rows
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert len(on_chain) >= 10  # the kills interrupted real work


def _query(outbox: Path, sql: str) -> int:
    """One integer from the attestor's outbox, read while the daemon writes it."""
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5) as db:
        return int(db.execute(sql).fetchone()[0] or 0)
