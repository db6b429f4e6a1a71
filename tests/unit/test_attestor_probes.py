"""Probes on this machine and on fixture hosts; their evidence is canonical and stable."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attestor.errors import LatencyError, ProbeError
from attestor.latency import Measurement
from attestor.probes.geography import GeographyProbe
from attestor.probes.hardware import HardwareProbe
from attestor.probes.health import DaemonStatus, HealthProbe, load_milli
from attestor.probes.network import NetworkProbe, ProviderProbe
from attestor.probes.power import PowerProbe, parse_upsc
from attestor.settings import (
    GeographySettings,
    NetworkSettings,
    NodeSettings,
    PeerSettings,
    PowerSettings,
    ProviderSettings,
)
from redundancy.devicecert import sign_envelope
from redundancy.domains import Dimension, Kind, domain_id, hardware_domain
from redundancy.evidence import canonical_json
from redundancy.kernelclock import ClockState, read_kernel_clock
from redundancy.proofs import exchange_id, subject_for_node
from redundancy.sitecondition import health_reasons

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOSTS = FIXTURES / "hosts"
NODE = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
T = 1_795_000_000


def _power(**fields: object) -> PowerSettings:
    base: dict[str, object] = {
        "grid": "entso-e/amprion",
        "feeds": 2,
        "ups": True,
        "generator": False,
    }
    return PowerSettings.model_validate({**base, **fields})


# ------------------------------------------------------------------------ hardware


def test_hardware_reads_dmi_and_cpuinfo_from_a_host_tree() -> None:
    obs = HardwareProbe(NodeSettings(address=NODE), 0, HOSTS / "dell-r650").observe(T)
    assert obs.body == {
        "node": NODE,
        "vendor": "Dell Inc.",
        "model": "PowerEdge R650",
        "firmware": "2.19.1",
        "biosDate": "03/01/2024",
        "cpuModel": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        "cpuCount": 2,
        "memoryMiB": 257735,
        "sources": {"vendor": "dmi", "model": "dmi", "firmware": "dmi", "cpuModel": "cpuinfo"},
    }
    assert obs.kind == Kind.HARDWARE
    assert obs.subject == subject_for_node(NODE)
    assert obs.domain_id == hardware_domain("Dell Inc.", "PowerEdge R650", "2.19.1")
    # the domain folds case and spaces: the same machine configured by hand shares it
    assert obs.domain_id == hardware_domain("dell inc.", "poweredge  r650", "2.19.1")


def test_hardware_config_overrides_what_the_host_says() -> None:
    node = NodeSettings(address=NODE, firmware="2.20.0", cpu_model="custom")
    body = HardwareProbe(node, 0, HOSTS / "dell-r650").facts()
    assert (body["vendor"], body["firmware"], body["cpuModel"]) == ("Dell Inc.", "2.20.0", "custom")
    assert "biosDate" not in body  # the DMI date describes another firmware
    assert body["sources"] == {
        "vendor": "dmi",
        "model": "dmi",
        "firmware": "config",
        "cpuModel": "config",
    }


def test_hardware_placeholder_dmi_is_not_a_fact_and_names_the_setting() -> None:
    probe = HardwareProbe(NodeSettings(address=NODE), 3, HOSTS / "placeholder-dmi")
    with pytest.raises(ProbeError) as caught:
        probe.observe(T)
    assert "vendor of node" in str(caught.value)
    assert "set hardware.nodes[3].vendor" in str(caught.value)


def test_hardware_without_dmi_uses_config_and_arm_cpuinfo() -> None:
    node = NodeSettings(address=NODE, vendor="raspberry pi", model="4b", firmware="2024-01")
    body = HardwareProbe(node, 0, HOSTS / "arm-no-dmi").facts()
    assert body["cpuModel"] == "BCM2835"
    assert body["cpuCount"] == 2
    assert "memoryMiB" not in body


def test_hardware_on_this_machine() -> None:
    node = NodeSettings(address=NODE, vendor="v", model="m", firmware="f")
    body = HardwareProbe(node, 0).facts()
    if Path("/proc/cpuinfo").is_file():
        assert body["cpuCount"] >= 1
        assert body["memoryMiB"] > 0
    canonical_json(body)  # integers and strings only


# --------------------------------------------------------------------------- power


def test_power_from_config() -> None:
    obs = PowerProbe(_power()).observe(T)
    assert obs.body == {"grid": "entso-e/amprion", "feeds": 2, "ups": True, "generator": False}
    assert obs.domain_id == domain_id(Dimension.POWER, "entso-e/amprion")
    assert obs.subject is None


def test_power_reads_a_ups_through_upsc_as_integers() -> None:
    upsc = str(FIXTURES / "bin" / "upsc")
    body = PowerProbe(_power(ups_name="rack1@localhost", upsc=upsc)).observe(T).body
    assert body["upsReading"] == {
        "name": "rack1@localhost",
        "status": "OL",
        "batteryChargePct": 100,
        "batteryRuntimeSeconds": 2460,
        "inputVoltageDeciV": 2301,
        "loadPct": 23,
    }


def test_power_records_why_there_is_no_ups_reading(tmp_path: Path) -> None:
    upsc = str(FIXTURES / "bin" / "upsc")
    failing = PowerProbe(_power(ups_name="other@localhost", upsc=upsc)).observe(T).body
    assert failing["upsReading"] == {
        "name": "other@localhost",
        "error": f"{upsc} exited 1: Error: Driver not connected",
    }
    missing = str(tmp_path / "upsc")
    absent = PowerProbe(_power(ups_name="u", upsc=missing)).observe(T).body
    assert absent["upsReading"] == {"name": "u", "error": f"{missing} not installed"}


def test_parse_upsc_skips_unparsable_numbers() -> None:
    assert parse_upsc("battery.charge: n/a\nups.status: OB LB\n") == {"status": "OB LB"}


# ------------------------------------------------------------- network and provider


def test_network_and_provider_from_config() -> None:
    net = NetworkProbe(NetworkSettings(asns=["AS3320", "as1299"])).observe(T)
    assert net.body == {"asns": ["as3320", "as1299"], "primaryAsn": "as3320"}
    assert net.domain_id == domain_id(Dimension.NETWORK, "as3320")
    prov = ProviderProbe(ProviderSettings(name="Equinix")).observe(T)
    assert prov.body == {"provider": "Equinix"}
    assert prov.domain_id == domain_id(Dimension.PROVIDER, "equinix")


# -------------------------------------------------------------------------- health


def _status() -> DaemonStatus:
    return DaemonStatus(chain_head=42, last_published_sequence=7, outbox_depth=1, uptime_seconds=9)


def test_health_on_this_machine(tmp_path: Path) -> None:
    obs = HealthProbe(tmp_path, _status).observe(T)
    body = obs.body
    assert obs.kind == Kind.HEALTH and obs.domain_id == bytes(32)
    assert body["chainReachable"] is True and body["chainHead"] == 42
    assert body["lastPublishedSequence"] == 7 and body["outboxDepth"] == 1
    assert body["diskTotalMiB"] >= body["diskFreeMiB"] > 0
    assert body["cpuCount"] >= 1
    assert isinstance(body["load1Milli"], int)
    assert isinstance(body["clockSynced"], bool)
    assert isinstance(body["clockMaxErrorMicros"], int)
    canonical_json(body)


def test_health_from_a_host_tree_and_an_unreachable_chain(tmp_path: Path) -> None:
    def down() -> DaemonStatus:
        return DaemonStatus(None, 0, 5, 1)

    clock = ClockState(synced=True, offset_micros=-120, max_error_micros=4000)
    body = HealthProbe(tmp_path, down, HOSTS / "dell-r650", lambda: clock).observe(T).body
    assert (body["load1Milli"], body["load5Milli"], body["load15Milli"]) == (520, 410, 300)
    assert body["memAvailableMiB"] == 244140
    assert (body["clockSynced"], body["clockOffsetMicros"]) == (True, -120)
    assert body["chainReachable"] is False and "chainHead" not in body


def test_load_milli_rejects_garbage() -> None:
    assert load_milli("") is None
    assert load_milli("a b c") is None


def test_kernel_clock_is_readable_here() -> None:
    state = read_kernel_clock()
    assert state is None or state.max_error_micros >= 0


# ----------------------------------------------------------------------- geography


def _geo() -> GeographySettings:
    return GeographySettings(
        latitude_e6=50_110_922, longitude_e6=8_682_127, country="de", metro="frankfurt"
    )


def test_geography_claims_coordinates_and_records_measurements() -> None:
    peers = [
        PeerSettings(facility="dal1", address="127.0.0.1:1"),
        PeerSettings(facility="ams1", address="127.0.0.1:2"),
    ]

    def measure(peer: PeerSettings) -> Measurement:
        if peer.facility == "dal1":
            raise TimeoutError("no answer in time")
        return Measurement("ams1", "ab" * 32, "12" * 32, 7300, 5, "cd" * 64, "ef" * 32, 3600)

    probe = GeographyProbe(_geo(), peers, measure)
    obs = probe.observe(T)
    assert obs.body == {
        "latitudeE6": 50_110_922,
        "longitudeE6": 8_682_127,
        "country": "de",
        "metro": "frankfurt",
        "rtt": [
            {
                "peer": "ams1",
                "nonce": "ab" * 32,
                "responderNonce": "12" * 32,
                "exchangeId": "0x"
                + exchange_id(bytes.fromhex("ab" * 32), bytes.fromhex("12" * 32)).hex(),
                "rttMicros": 7300,
                "samples": 5,
                "responderSignature": "cd" * 64,
                "responderDeviceCert": "ef" * 32,
                "emulatedDelayMicros": 3600,
            }
        ],
        "unreachablePeers": [{"peer": "dal1", "reason": "TimeoutError: no answer in time"}],
    }
    assert probe.unreachable == ["dal1"]
    assert (obs.latitude_e6, obs.longitude_e6) == (50_110_922, 8_682_127)
    assert obs.domain_id == domain_id(Dimension.METRO, "frankfurt")
    assert obs.secondary_domain_id == domain_id(Dimension.COUNTRY, "de")


def test_geography_leaves_out_a_peer_that_answers_wrongly() -> None:
    def measure(peer: PeerSettings) -> Measurement:
        raise LatencyError("ams1: signature does not verify")

    obs = GeographyProbe(_geo(), [PeerSettings(facility="ams1", address="h:1")], measure).observe(T)
    assert obs.body["rtt"] == []
    assert obs.body["unreachablePeers"][0]["reason"].startswith("LatencyError")


# ---------------------------------------------------------------- canonical, stable

DEVICE_SEED = bytes(range(32))

STABLE_SCRIPT = """
import hashlib
from tests.unit.test_attestor_probes import fixture_envelopes
for kind, doc in fixture_envelopes():
    print(kind, hashlib.sha256(doc).hexdigest())
"""


def _never(peer: PeerSettings) -> Measurement:
    raise AssertionError("no peers, no measurements")


def fixture_envelopes() -> list[tuple[str, bytes]]:
    """The device-signed evidence of every probe on fixture input at a fixed time."""
    key = Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)
    node = NodeSettings(address=NODE)
    observations = [
        HardwareProbe(node, 0, HOSTS / "dell-r650").observe(T),
        PowerProbe(_power()).observe(T),
        NetworkProbe(NetworkSettings(asns=["AS3320"])).observe(T),
        ProviderProbe(ProviderSettings(name="equinix")).observe(T),
        GeographyProbe(_geo(), [], _never).observe(T),
        HealthProbe(
            Path("/"),
            _status,
            HOSTS / "dell-r650",
            lambda: ClockState(True, 5, 1000),
        ).observe(T),
    ]
    out = []
    for obs in observations:
        body = dict(obs.body)
        # host-dependent health facts are replaced, the rest comes from the fixture tree
        if obs.kind == Kind.HEALTH:
            body.update(cpuCount=2, diskFreeMiB=1, diskTotalMiB=2)
            body["degraded"] = health_reasons(body)
        doc = {
            "v": 1,
            "kind": obs.kind.name.lower(),
            "facility": "fra1",
            "observedAt": obs.observed_at,
            "body": body,
        }
        out.append((obs.kind.name.lower(), sign_envelope(doc, key, "00" * 32)))
    return out


def test_evidence_is_canonical_and_identical_across_runs_and_processes() -> None:
    first = fixture_envelopes()
    assert first == fixture_envelopes()
    for _, doc in first:
        assert canonical_json(json.loads(doc)) == doc
    here = [f"{kind} {hashlib.sha256(doc).hexdigest()}" for kind, doc in first]
    root = Path(__file__).resolve().parent.parent.parent
    other = subprocess.run(
        [sys.executable, "-c", STABLE_SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert other.stdout.split("\n")[:-1] == here
