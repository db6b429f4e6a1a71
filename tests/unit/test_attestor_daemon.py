"""The daemon in-process, without a chain: a round signs every kind into the outbox; after a
restart each probe waits out its interval, unless the settings now claim something else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from attestor.cli import build_daemon
from attestor.daemon import Daemon
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, init_site, load_device_identity
from attestor.outbox import PENDING, Outbox
from attestor.registry_link import Target
from attestor.settings import load_settings
from redundancy.devicecert import parse_envelope
from redundancy.domains import Kind
from redundancy.keystore import load_account
from redundancy.proofs import registry_domain_separator

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CONFIG = f"""
facility = "fra1"
data_dir = "data"
[chain]
rpc_url = "http://127.0.0.1:9"
registry = "{REGISTRY}"
chain_id = 31337
[keys]
password_file = "keys/password"
[health]
heartbeat_interval = 10
[power]
grid = "GRID"
feeds = 2
ups = true
generator = true
[geography]
latitude_e6 = 1
longitude_e6 = 2
country = "de"
metro = "frankfurt"
[network]
asns = ["AS1"]
[provider]
name = "p"
[[hardware.nodes]]
address = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
vendor = "v"
model = "m"
firmware = "f"
[latency]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "password").write_text("pw\n")
    (tmp_path / "keys" / "password").chmod(0o600)
    init_site("fra1", tmp_path / "keys", "pw", kdf_iterations=16)
    return tmp_path


@contextmanager
def _daemon(site: Path, grid: str = "entso-e/amprion") -> Iterator[Daemon]:
    config = site / "site.toml"
    config.write_text(CONFIG.replace("GRID", grid))
    settings = load_settings(config)
    keys = site / "keys"
    account = load_account(keys / "attestor-key.json", "pw")
    identity = load_device_identity(keys / DEVICE_KEY, keys / DEVICE_CERT, keys / CA_CERT, "pw")
    ds = registry_domain_separator(31337, REGISTRY)
    outbox = Outbox(site / "data" / "outbox.sqlite", attestor=account.address, domain_separator=ds)
    daemon = build_daemon(
        settings,
        account,
        identity,
        Target(settings.chain.rpc_url, 31337, REGISTRY, 0, 1, 1),
        outbox,
        ds,
    )
    try:
        yield daemon
    finally:
        daemon.responder.stop()
        daemon.status.stop()
        outbox.close()


def test_first_round_signs_every_kind_and_a_restart_waits_its_intervals(site: Path) -> None:
    with _daemon(site) as daemon:
        now = daemon.clock()
        due = daemon.schedule.due(now)
        assert [j.name for j in due] == [
            "health",
            "power",
            "network",
            "provider",
            "hardware[0]",
            "geography",
        ]
        daemon._round(due, now)
        signed_by = daemon.clock()  # the issuer reads the clock again when it signs
        entries = daemon.outbox.entries()
        assert [e.kind for e in entries] == [
            Kind.HEALTH,
            Kind.POWER,
            Kind.NETWORK,
            Kind.PROVIDER,
            Kind.HARDWARE,
            Kind.GEOGRAPHY,
        ]
        assert all(e.state == PENDING for e in entries)
        issued_at = entries[0].proof.attestation.issued_at
        health = parse_envelope(entries[0].proof.evidence)["body"]
        assert health["chainReachable"] is False  # nothing listens on port 9
        assert (
            entries[0].proof.attestation.expires_at - entries[0].proof.attestation.issued_at == 20
        )
        assert daemon.schedule.due(now + 1) == []
        assert daemon.metrics.value("attestor_proofs_signed_total", kind="power") == 1
        assert daemon.metrics.value("attestor_last_signed_sequence") == 6
        alive, body = daemon.health()
        assert alive and body["status"] == "ok" and body["outboxDepth"] == 6
        assert body["chainReachable"] is None  # no chain request made yet: unknown
    with _daemon(site) as daemon:  # a restart: nothing is due before its interval
        assert daemon.schedule.due(daemon.clock()) == []
        assert daemon.metrics.value("attestor_last_signed_sequence") == 6  # from the outbox
        assert daemon.metrics.value("attestor_outbox_depth") == 6
        # the heartbeat (10 s) is next, counted from the first round's signing time (a whole
        # second between the round's start and its end), not from the restart
        t = daemon.clock()
        wait = daemon.schedule.seconds_until_next(t)
        assert int(now) + 10 - t <= wait <= int(signed_by) + 10 - t
        assert wait == pytest.approx(issued_at + 10 - t)
    with _daemon(site, grid="ercot") as daemon:  # an edited fact is re-signed at once
        assert [j.name for j in daemon.schedule.due(daemon.clock())] == ["power"]


def test_health_fails_once_the_latency_responder_has_stopped(site: Path) -> None:
    """Before, a responder thread killed by one datagram left /healthz "ok" while no peer could
    measure this site any more."""
    with _daemon(site) as daemon:
        daemon.serve()
        alive, body = daemon.health()
        assert alive and body["status"] == "ok"
        daemon.responder.stop()  # as if its thread had died
        alive, body = daemon.health()
        assert not alive and body["status"] == "latency_responder_stopped"
