"""End to end: two real attestor processes against a real anvil publish their sites' proofs,
measure each other's latency from both ends (and the pair's two signed reports land on the
selector), keep their facilities fresh; a stopped one goes stale."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestor.keys import load_private_key
from devnet.demo import fetch_signed_latencies, relay_signed_latencies
from devnet.http import http_json
from devnet.ports import free_udp_port
from redundancy.deployment import Deployment
from redundancy.devicecert import parse_envelope, verify_envelope
from redundancy.domains import Kind
from redundancy.keystore import load_account
from redundancy.selector import SelectorClient
from tests.attestor_sites import (
    PASSWORD,
    AttestorProcess,
    Deployed,
    Site,
    landed_proofs,
    make_site,
    register,
    wait_until,
)

HEARTBEAT = 2
FRA_AMS_ONE_WAY_US = 3600


def _cert(deployed: Deployed, sha_hex: str) -> bytes:
    found = deployed.registry.find_certificate(bytes.fromhex(sha_hex))
    assert found is not None, f"certificate {sha_hex} not published"
    return found[1]


def _healthz(site: Site) -> tuple[int, dict[str, object]]:
    return http_json(f"http://127.0.0.1:{site.http_port}/healthz", timeout=5)


def test_two_attestors_keep_their_sites_fresh_and_a_stopped_one_goes_stale(
    deployed: Deployed, tmp_path: Path
) -> None:
    fra_port, ams_port = free_udp_port(), free_udp_port()
    fra1, ams1 = (
        make_site(
            tmp_path,
            name,
            deployed,
            heartbeat=HEARTBEAT,
            latency_port=port,
            peers={peer: peer_port},
            emulated={peer: FRA_AMS_ONE_WAY_US},
        )
        for name, port, peer, peer_port in (
            ("fra1", fra_port, "ams1", ams_port),
            ("ams1", ams_port, "fra1", fra_port),
        )
    )
    for site in (fra1, ams1):
        register(deployed, site)
    registry = deployed.registry

    fra_proc, ams_proc = AttestorProcess(fra1), AttestorProcess(ams1)
    try:
        wait_until(
            lambda: (
                not registry.facility_status(fra1.facility_id).stale
                and not registry.facility_status(ams1.facility_id).stale
            ),
            30,
            "both facilities fresh",
        )

        # geography carries the peer's signed RTT, with the emulated delay recorded as such
        def geography_with_rtt() -> bool:
            return any(
                parse_envelope(x.proof.evidence)["body"]["rtt"]
                for x in landed_proofs(registry, ams1.address)
                if x.proof.attestation.kind == Kind.GEOGRAPHY
            )

        wait_until(geography_with_rtt, 20, "a geography proof with an RTT measurement")
        landed = landed_proofs(registry, ams1.address)
        geo = next(
            x.proof
            for x in landed
            if x.proof.attestation.kind == Kind.GEOGRAPHY
            and parse_envelope(x.proof.evidence)["body"]["rtt"]
        )
        doc = parse_envelope(geo.evidence)
        (entry,) = doc["body"]["rtt"]
        assert entry["peer"] == "fra1"
        assert entry["emulatedDelayMicros"] == FRA_AMS_ONE_WAY_US
        assert entry["rttMicros"] >= 2 * FRA_AMS_ONE_WAY_US
        fra_device_cert = parse_envelope(landed_proofs(registry, fra1.address)[0].proof.evidence)
        assert entry["responderDeviceCert"] == fra_device_cert["deviceCert"]
        # every landed proof's evidence verifies against certificates published on-chain
        for x in landed:
            ev = parse_envelope(x.proof.evidence)
            device = x509.load_der_x509_certificate(_cert(deployed, ev["deviceCert"]))
            ca = x509.load_der_x509_certificate(_cert(deployed, ams1.ca_fingerprint.hex()))
            checks = verify_envelope(x.proof.evidence, device, ca, ams1.ca_fingerprint)
            assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        # sequences landed strictly increasing
        sequences = [x.proof.attestation.sequence for x in landed]
        assert sequences == sorted(set(sequences))

        # both ends signed what they measured of the same exchange; relayed, the pair is measured
        urls = [f"http://127.0.0.1:{site.http_port}/latency" for site in (fra1, ams1)]

        def challenged(site: Site) -> set[bytes]:
            """The exchanges ``site`` measured as challenger, from its landed geography
            proofs."""
            return {
                bytes.fromhex(entry["exchangeId"].removeprefix("0x"))
                for x in landed_proofs(registry, site.address)
                if x.proof.attestation.kind == Kind.GEOGRAPHY
                for entry in parse_envelope(x.proof.evidence)["body"]["rtt"]
            }

        def both_signed() -> bool:
            # Each end's book holds its newest signed measurement of the peer, as challenger or
            # as responder. Both sites challenge once at start (again only if the peer did not
            # answer), so each may end up holding its answer to the other's challenge: two
            # different exchanges, for good, as the next geography run is hours away. An
            # exchange one end holds signed counts when the other holds it too or published it
            # as challenger (a responder signs only an exchange whose challenger's signed
            # measurement it checked).
            held = [
                {x.measurement.exchange_id for x in fetch_signed_latencies(url)} for url in urls
            ]
            if not all(held):
                return False
            fra_ids, ams_ids = held
            return bool(
                fra_ids & ams_ids or fra_ids & challenged(ams1) or ams_ids & challenged(fra1)
            )

        wait_until(both_signed, 20, "both ends' signed measurements of one exchange")
        dep = Deployment.read(deployed.deployment)
        selector = SelectorClient(deployed.w3, dep.selector, deployed.owner)
        relayed = relay_signed_latencies(
            selector, registry.domain_separator(), urls, deployed.owner
        )
        assert (relayed.accepted, relayed.refused) == (2, [])
        rtt = selector.pair_rtt(fra1.facility_id, ams1.facility_id)
        assert rtt is not None and rtt >= 2 * FRA_AMS_ONE_WAY_US
        assert not selector.is_geography_flagged(fra1.facility_id)
        again = relay_signed_latencies(selector, registry.domain_separator(), urls, deployed.owner)
        assert (again.accepted, again.already_held) == (0, 2)  # a replay changes nothing

        metrics = ams_proc.metrics()
        assert metrics['attestor_proofs_published_total{kind="geography"}'] >= 1
        assert metrics['attestor_peer_rtt_microseconds{peer="fra1"}'] >= 2 * FRA_AMS_ONE_WAY_US
        status, health = _healthz(ams1)
        assert status == 200 and health["status"] == "ok" and health["chainReachable"] is True

        # a clean stop, then staleness within two heartbeat intervals of the last heartbeat
        assert ams_proc.terminate() == 0
        assert ams_proc.events()[-1]["event"] == "daemon.stopped"
        wait_until(
            lambda: Kind.HEALTH in registry.facility_status(ams1.facility_id).expired_kinds,
            2 * HEARTBEAT + 10,
            "ams1 stale after its heartbeat expired",
        )
        assert not registry.facility_status(fra1.facility_id).stale
        assert fra_proc.terminate() == 0
    finally:
        for p in (fra_proc, ams_proc):
            if p.proc.poll() is None:
                p.kill()
    _assert_no_key_material_in_logs(fra1, ams1)


def _assert_no_key_material_in_logs(*sites: Site) -> None:
    for site in sites:
        account = load_account(site.keystore, PASSWORD)
        device = load_private_key(site.root / "keys" / "device-key.pem", PASSWORD, "device key")
        raw_device = device.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        secrets = [bytes(account.key).hex(), raw_device.hex(), PASSWORD]
        for log in site.logs:
            text = log.read_text().lower()
            assert text, f"{log} is empty"
            for secret in secrets:
                assert secret.lower() not in text, f"key material in {log}"
