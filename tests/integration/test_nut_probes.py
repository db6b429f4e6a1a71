"""The attestor's power and health probes against the real Network UPS Tools stack (upsd and
the dummy-ups driver from Debian's nut-server, upsc from nut-client): a UPS put on battery is
published as such, and the health evidence calls the site degraded until it is back on line."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from attestor.probes.health import DaemonStatus, HealthProbe
from attestor.probes.power import PowerProbe, read_ups
from attestor.settings import PowerSettings
from devnet.ups import UPSC, UpsFarm, start_ups
from redundancy.evidence import canonical_json
from redundancy.kernelclock import ClockState
from redundancy.sitecondition import UPS_LOW_BATTERY, UPS_ON_BATTERY

T = 1_795_000_000


@pytest.fixture(scope="module")
def farm() -> Iterator[UpsFarm]:
    with start_ups(["fra1", "ams1"]) as f:
        yield f


def _status() -> DaemonStatus:
    return DaemonStatus(chain_head=1, last_published_sequence=1, outbox_depth=0, uptime_seconds=1)


def _health(farm: UpsFarm, tmp_path: Path, site: str) -> HealthProbe:
    synced = ClockState(synced=True, offset_micros=0, max_error_micros=1000)
    return HealthProbe(
        tmp_path, _status, clock=lambda: synced, ups=partial(read_ups, UPSC, farm.name(site))
    )


def test_power_probe_reads_the_real_ups(farm: UpsFarm) -> None:
    settings = PowerSettings(
        grid="entso-e/amprion", feeds=2, ups=True, generator=True, ups_name=farm.name("fra1")
    )
    reading = PowerProbe(settings).observe(T).body["upsReading"]
    assert reading == {
        "name": farm.name("fra1"),
        "status": "OL",
        "batteryChargePct": 100,
        "batteryRuntimeSeconds": 2460,
        "inputVoltageDeciV": 2301,
        "loadPct": 23,
    }


def test_ups_on_battery_then_low_then_back_on_line(farm: UpsFarm, tmp_path: Path) -> None:
    probe = _health(farm, tmp_path, "ams1")
    first = probe.observe(T).body
    assert first["upsStatus"] == "OL" and first["degraded"] == []
    farm.set_status("ams1", "OB")
    farm.wait_status("ams1", "OB")
    body = probe.observe(T).body
    assert body["upsStatus"] == "OB" and body["degraded"] == [UPS_ON_BATTERY]
    canonical_json(body)
    farm.set_status("ams1", "OB LB")
    farm.wait_status("ams1", "OB LB")
    assert probe.observe(T).body["degraded"] == [UPS_LOW_BATTERY, UPS_ON_BATTERY]
    farm.set_status("ams1", "OL")
    farm.wait_status("ams1", "OL")
    assert probe.observe(T).body["degraded"] == []
    # the other site's UPS never moved
    assert _health(farm, tmp_path, "fra1").observe(T).body["upsStatus"] == "OL"


def test_an_unknown_ups_is_an_error_not_a_degradation(farm: UpsFarm, tmp_path: Path) -> None:
    probe = HealthProbe(
        tmp_path,
        _status,
        clock=lambda: ClockState(True, 0, 1000),
        ups=partial(read_ups, UPSC, f"nosuch@127.0.0.1:{farm.port}"),
    )
    body = probe.observe(T).body
    assert "upsStatus" not in body and "Unknown UPS" in body["upsError"]
    assert body["degraded"] == []
