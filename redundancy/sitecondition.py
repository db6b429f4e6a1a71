"""When a site counts as **degraded**: still up, but telemetry says it is about to fail or
cannot be trusted to keep time. One rule, used by the attestor (it publishes the reasons in its
health evidence), by the validator node and gateway (they move etcd leadership away and stop
taking new orders) and by the API (it shows the reasons, recomputed from the evidence's fields).

Reasons, each from a fact the health evidence carries:

- ``ups-on-battery``: the UPS reports ``OB`` (the grid feed is gone; the site runs on battery);
- ``ups-low-battery``: the UPS reports ``LB`` (shutdown is imminent);
- ``clock-unsynchronised``: the kernel says no NTP/PTP daemon disciplines the clock
  (``adjtimex``: ``STA_UNSYNC``);
- ``disk-nearly-full``: less than ``DISK_NEARLY_FULL_PERMILLE`` thousandths of the data disk free.

A UPS that cannot be read (no driver, stale data) is *unknown*, not degraded: nothing acts on an
absence of information. Pure: no I/O here; ``parse_upsc`` reads text someone else obtained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

UPS_ON_BATTERY: Final = "ups-on-battery"
UPS_LOW_BATTERY: Final = "ups-low-battery"
CLOCK_UNSYNCHRONISED: Final = "clock-unsynchronised"
DISK_NEARLY_FULL: Final = "disk-nearly-full"
REASONS: Final = (UPS_ON_BATTERY, UPS_LOW_BATTERY, CLOCK_UNSYNCHRONISED, DISK_NEARLY_FULL)

#: A data disk with less free than this (thousandths of its size) is nearly full: 5 %.
DISK_NEARLY_FULL_PERMILLE: Final = 50

Condition = Literal["ups", "clock", "disk"]
"""The three families of reasons, as a watcher's settings name them."""
FAMILY: Final[dict[str, Condition]] = {
    UPS_ON_BATTERY: "ups",
    UPS_LOW_BATTERY: "ups",
    CLOCK_UNSYNCHRONISED: "clock",
    DISK_NEARLY_FULL: "disk",
}

#: upsc variable -> (evidence field, multiplier to an integer unit)
UPS_VARIABLES: dict[str, tuple[str, int]] = {
    "battery.charge": ("batteryChargePct", 1),
    "battery.runtime": ("batteryRuntimeSeconds", 1),
    "input.voltage": ("inputVoltageDeciV", 10),
    "ups.load": ("loadPct", 1),
}


def parse_upsc(output: str) -> dict[str, Any]:
    """The UPS facts in ``upsc <ups>`` output (``name: value`` lines), as integers in stated
    units (NUT reports decimals; evidence has no floats), plus ``status`` (``ups.status``)."""
    values = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    reading: dict[str, Any] = {}
    if "ups.status" in values:
        reading["status"] = values["ups.status"]
    for variable, (name, scale) in UPS_VARIABLES.items():
        if variable in values:
            try:
                reading[name] = int(Decimal(values[variable]) * scale)
            except InvalidOperation:
                continue
    return reading


def ups_flags(status: str | None) -> frozenset[str]:
    """The flags of a NUT ``ups.status`` (``"OB LB"`` -> {OB, LB}); empty when unknown."""
    return frozenset(status.split()) if isinstance(status, str) else frozenset()


def degraded_reasons(
    *,
    ups_status: str | None = None,
    clock_synced: bool | None = None,
    disk_free_mib: int | None = None,
    disk_total_mib: int | None = None,
) -> list[str]:
    """The reasons a site with these facts is degraded, sorted (empty: not degraded). A fact
    given as None is unknown and makes no reason."""
    reasons = []
    flags = ups_flags(ups_status)
    if "OB" in flags:
        reasons.append(UPS_ON_BATTERY)
    if "LB" in flags:
        reasons.append(UPS_LOW_BATTERY)
    if clock_synced is False:
        reasons.append(CLOCK_UNSYNCHRONISED)
    if (
        disk_free_mib is not None
        and disk_total_mib is not None
        and disk_total_mib > 0
        and disk_free_mib * 1000 < disk_total_mib * DISK_NEARLY_FULL_PERMILLE
    ):
        reasons.append(DISK_NEARLY_FULL)
    return sorted(reasons)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def health_reasons(body: Mapping[str, Any]) -> list[str]:
    """The reasons recomputed from a health evidence body's own fields (``upsStatus``,
    ``clockSynced``, ``diskFreeMiB``, ``diskTotalMiB``), whatever it claims in ``degraded``:
    fields of the wrong type count as unknown (evidence read from the chain is hostile)."""
    ups = body.get("upsStatus")
    synced = body.get("clockSynced")
    return degraded_reasons(
        ups_status=ups if isinstance(ups, str) else None,
        clock_synced=synced if isinstance(synced, bool) else None,
        disk_free_mib=_int(body.get("diskFreeMiB")),
        disk_total_mib=_int(body.get("diskTotalMiB")),
    )


def reacted_to(reasons: Iterable[str], families: Iterable[str]) -> list[str]:
    """The reasons in the families a watcher reacts to (``ups``, ``clock``, ``disk``)."""
    chosen = set(families)
    return [r for r in reasons if FAMILY.get(r) in chosen]
