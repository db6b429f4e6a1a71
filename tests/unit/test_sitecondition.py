"""The degraded rule (``redundancy.sitecondition``): each reason from its fact, unknown facts
make none, hostile evidence fields count as unknown."""

from __future__ import annotations

from api.condition import health_condition
from redundancy.sitecondition import (
    CLOCK_UNSYNCHRONISED,
    DISK_NEARLY_FULL,
    UPS_LOW_BATTERY,
    UPS_ON_BATTERY,
    degraded_reasons,
    health_reasons,
    parse_upsc,
    reacted_to,
    ups_flags,
)


def test_a_healthy_site_is_not_degraded() -> None:
    assert (
        degraded_reasons(ups_status="OL", clock_synced=True, disk_free_mib=900, disk_total_mib=1000)
        == []
    )


def test_unknown_facts_make_no_reason() -> None:
    assert degraded_reasons() == []
    assert degraded_reasons(disk_free_mib=0, disk_total_mib=0) == []


def test_each_reason_from_its_fact() -> None:
    assert degraded_reasons(ups_status="OB DISCHRG") == [UPS_ON_BATTERY]
    assert degraded_reasons(ups_status="OB LB") == [UPS_LOW_BATTERY, UPS_ON_BATTERY]
    assert degraded_reasons(ups_status="OL CHRG") == []
    assert degraded_reasons(clock_synced=False) == [CLOCK_UNSYNCHRONISED]
    # below 5 % free is nearly full; exactly 5 % is not
    assert degraded_reasons(disk_free_mib=49, disk_total_mib=1000) == [DISK_NEARLY_FULL]
    assert degraded_reasons(disk_free_mib=50, disk_total_mib=1000) == []


def test_ups_flags_split_nut_status() -> None:
    assert ups_flags("OB LB") == {"OB", "LB"}
    assert ups_flags(None) == frozenset()


def test_health_reasons_recomputes_from_the_body_and_ignores_hostile_types() -> None:
    body = {"upsStatus": "OB", "clockSynced": True, "diskFreeMiB": 1, "diskTotalMiB": 1000}
    assert health_reasons(body) == [DISK_NEARLY_FULL, UPS_ON_BATTERY]
    # what the body claims is not what counts
    assert health_reasons({**body, "degraded": []}) == [DISK_NEARLY_FULL, UPS_ON_BATTERY]
    hostile = {"upsStatus": ["OB"], "clockSynced": 0, "diskFreeMiB": True, "diskTotalMiB": "9"}
    assert health_reasons(hostile) == []


def test_reacted_to_keeps_the_chosen_families() -> None:
    reasons = [CLOCK_UNSYNCHRONISED, DISK_NEARLY_FULL, UPS_ON_BATTERY]
    assert reacted_to(reasons, ["ups", "disk"]) == [DISK_NEARLY_FULL, UPS_ON_BATTERY]
    assert reacted_to(reasons, []) == []


def test_parse_upsc_turns_decimals_into_integers() -> None:
    out = "ups.status: OB\ninput.voltage: 230.1\nbattery.charge: 97\nups.load: n/a\n"
    assert parse_upsc(out) == {"status": "OB", "inputVoltageDeciV": 2301, "batteryChargePct": 97}


def test_the_api_reads_hostile_health_evidence_as_unknown_not_as_an_error() -> None:
    assert health_condition(b"\xff not json") is None
    assert health_condition(b"[1, 2]") is None
    hostile = (
        b'{"v": 99999999999999999999, "observedAt": -1, "body": {"upsStatus": "OB \\ud800",'
        b' "degraded": ["ups-on-battery", "made-up"], "diskFreeMiB": 1' + b"0" * 300 + b","
        b' "diskTotalMiB": 2' + b"0" * 300 + b"}}"
    )
    c = health_condition(hostile)
    assert c is not None
    assert (c.version, c.observed_at, c.ups_status) == (None, None, None)  # none shown
    assert c.reasons == ("ups-on-battery",)  # the flag is still read from the status's words
    assert c.claimed == ("ups-on-battery",)  # only reasons the rule knows
