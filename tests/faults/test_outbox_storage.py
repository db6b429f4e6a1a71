"""The attestor's storage fails: the disk fills up under a running attestor, and the outbox's
file system is read-only at a restart. It refuses to sign rather than lose a proof and says so
(a log event, a metric and /healthz while running; one line and a non-zero exit at start),
keeps publishing what it already stored, and signs again, continuing its sequence without a
gap, once the storage is back.

The outbox lives on a real 1 MiB tmpfs mounted for the test (root only, as CI runs). A file
system cannot be remounted read-only under a process writing to it (the kernel does that only
on I/O errors), so read-only is tested at start-up."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from devnet.http import http_json
from tests.attestor_sites import (
    AttestorProcess,
    Deployed,
    Site,
    landed_proofs,
    make_site,
    register,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "fra1" / "data"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def healthz(site: Site) -> tuple[int, dict[str, object]]:
    return http_json(f"http://127.0.0.1:{site.http_port}/healthz", timeout=5)


def sequences(site: Site, state: str | None = None) -> list[int]:
    """The outbox's sequences (of one state), read without keeping the file open."""
    where = "" if state is None else f" WHERE state = '{state}'"
    with closing(sqlite3.connect(f"file:{site.outbox}?mode=ro", uri=True)) as db:
        query = f"SELECT sequence FROM proofs{where} ORDER BY sequence"
        return [row[0] for row in db.execute(query)]


def fill(folder: Path) -> Path:
    """Write until the file system is full; returns the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_then_a_read_only_outbox_refuse_to_sign_and_lose_nothing(
    deployed: Deployed, tmp_path: Path, small_disk: Path
) -> None:
    site = make_site(tmp_path, "fra1", deployed, heartbeat=2)
    register(deployed, site)
    proc = AttestorProcess(site)
    try:
        proc.wait_for("publish.receipt", timeout=60)
        seen, signed_before = len(proc.events()), sequences(site)
        filler = fill(small_disk)
        refused = proc.wait_for("outbox.unwritable", timeout=30, after=seen)
        assert "cannot be written" in refused["error"] and refused["unsigned"]
        status, body = healthz(site)
        assert status == 503 and body["status"] == "outbox_unwritable" and body["outboxError"]
        assert proc.metrics()["attestor_outbox_errors_total"] >= 1
        assert proc.proc.poll() is None  # alive: publishing what it stored, retrying
        filler.unlink()
        resumed = proc.wait_for("proof.signed", timeout=30, after=len(proc.events()))
        assert resumed["sequence"] > signed_before[-1]
        wait_until(lambda: healthz(site)[0] == 200, 30, "/healthz back to 200")
        wait_until(lambda: proc.metrics()["attestor_outbox_depth"] == 0, 60, "outbox drained")
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    stored = sequences(site)
    assert stored == list(range(1, stored[-1] + 1))  # no gap, no sequence used twice

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused_start = AttestorProcess(site)
    assert refused_start.proc.wait(timeout=60) == 1
    (line,) = [e for e in refused_start.events() if e.get("event") == "raw"]
    assert line["line"].startswith("attestor: error: outbox ") and "readonly" in line["line"]
    assert str(site.outbox) in line["line"]
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert sequences(site) == stored  # nothing changed while it was read-only

    proc = AttestorProcess(site)
    try:
        signed = proc.wait_for("proof.signed", timeout=30)
        assert signed["sequence"] == stored[-1] + 1
        wait_until(lambda: proc.metrics()["attestor_outbox_depth"] == 0, 60, "outbox drained")
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    landed = [x.proof.attestation.sequence for x in landed_proofs(deployed.registry, site.address)]
    assert landed == sequences(site, "published") and len(set(landed)) == len(landed)
