"""End to end with real Network UPS Tools: an attestor process whose site's UPS (a dummy-ups
driver behind upsd) goes on battery publishes a health proof saying so, accepted on chain, with
``degraded`` naming it; back on line, the next heartbeat says so too. The facility stays fresh
throughout: degraded is a warning for the venue, not a lapse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.ups import UPSC, UpsFarm, start_ups
from redundancy.devicecert import parse_envelope
from redundancy.domains import Kind
from redundancy.sitecondition import UPS_ON_BATTERY, health_reasons
from tests.attestor_sites import (
    AttestorProcess,
    Deployed,
    landed_proofs,
    make_site,
    register,
    wait_until,
)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[UpsFarm]:
    with start_ups(["fra1"], tmp_path / "nut") as f:
        yield f


def _health_bodies(deployed: Deployed, attestor: str) -> list[dict[str, Any]]:
    return [
        parse_envelope(landed.proof.evidence)
        for landed in landed_proofs(deployed.registry, attestor)
        if landed.proof.attestation.kind == Kind.HEALTH
    ]


def test_a_ups_on_battery_is_published_as_degraded_on_chain(
    deployed: Deployed, farm: UpsFarm, tmp_path: Path
) -> None:
    power = f'ups_name = "{farm.name("fra1")}"\nupsc = "{UPSC}"'
    site = make_site(tmp_path, "fra1", deployed, heartbeat=2, tweaks={"power": power})
    register(deployed, site)
    proc = AttestorProcess(site)
    try:

        def latest() -> dict[str, Any] | None:
            docs = _health_bodies(deployed, site.address)
            return docs[-1] if docs else None

        wait_until(lambda: (d := latest()) is not None and "upsStatus" in d["body"], 30, "health")
        first = latest()
        assert first is not None and first["v"] == 2
        assert first["body"]["upsStatus"] == "OL"
        assert UPS_ON_BATTERY not in first["body"]["degraded"]

        farm.set_status("fra1", "OB")
        wait_until(
            lambda: (d := latest()) is not None and d["body"].get("upsStatus") == "OB",
            30,
            "a heartbeat on battery",
        )
        on_battery = latest()
        assert on_battery is not None
        body = on_battery["body"]
        assert UPS_ON_BATTERY in body["degraded"]
        assert body["degraded"] == health_reasons(body)  # anyone can recompute it
        assert not deployed.registry.facility_status(site.facility_id).stale

        farm.set_status("fra1", "OL")
        wait_until(
            lambda: (d := latest()) is not None and d["body"].get("upsStatus") == "OL",
            30,
            "a heartbeat back on line",
        )
        back = latest()
        assert back is not None and UPS_ON_BATTERY not in back["body"]["degraded"]
        # the power proof reads the same UPS
        power_docs = [
            parse_envelope(landed.proof.evidence)
            for landed in landed_proofs(deployed.registry, site.address)
            if landed.proof.attestation.kind == Kind.POWER
        ]
        assert power_docs and power_docs[0]["body"]["upsReading"]["name"] == farm.name("fra1")
    finally:
        proc.terminate()
