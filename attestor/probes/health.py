"""Health heartbeat: load, memory, disk, clock discipline, the UPS's status, chain reachability
and the outbox's progress, and whether all that makes the site **degraded**. Signed every
``heartbeat_interval`` and living two intervals, so a site that stops beating is stale on-chain
within two intervals. Evidence body (envelope ``v`` 2)::

    {"load1Milli": 120, "load5Milli": 90, "load15Milli": 80, "cpuCount": 2,
     "memAvailableMiB": 1800, "diskFreeMiB": 81000, "diskTotalMiB": 258000,
     "clockSynced": false, "clockOffsetMicros": 0, "clockMaxErrorMicros": 16000000,
     "upsStatus": "OB", "degraded": ["clock-unsynchronised", "ups-on-battery"],
     "chainReachable": true, "chainHead": 1234, "lastPublishedSequence": 41, "outboxDepth": 1,
     "uptimeSeconds": 3600}

Load averages are in thousandths; fields the host does not expose are left out. ``upsStatus``
(NUT's ``ups.status``) appears where ``power.ups_name`` names a UPS, or ``upsError`` saying why it
could not be read. ``degraded`` (always present; empty: not degraded) is
``redundancy.sitecondition.health_reasons`` of the body itself, so anyone can recompute it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attestor.probes import Observation
from attestor.probes.hostfiles import meminfo_kib, read_text
from redundancy.domains import Kind
from redundancy.kernelclock import ClockState, read_kernel_clock
from redundancy.sitecondition import health_reasons

UpsReader = Callable[[], dict[str, Any]]
"""Reads the site's UPS: a ``read_ups`` reading (``status``, or ``error``)."""


@dataclass(frozen=True)
class DaemonStatus:
    """What the daemon knows about its own progress, at heartbeat time."""

    chain_head: int | None  # None: the chain did not answer
    last_published_sequence: int
    outbox_depth: int
    uptime_seconds: int


def load_milli(loadavg: str) -> list[int] | None:
    parts = loadavg.split()
    try:
        return [round(float(p) * 1000) for p in parts[:3]] if len(parts) >= 3 else None
    except ValueError:
        return None


class HealthProbe:
    kind = Kind.HEALTH
    subject: bytes | None = None

    def __init__(
        self,
        data_dir: Path,
        status: Callable[[], DaemonStatus],
        root: Path = Path("/"),
        clock: Callable[[], ClockState | None] = read_kernel_clock,
        ups: UpsReader | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.status = status
        self.root = root
        self.clock = clock
        self.ups = ups

    def host(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        loads = load_milli(read_text(self.root, "proc/loadavg") or "")
        if loads is not None:
            body["load1Milli"], body["load5Milli"], body["load15Milli"] = loads
        body["cpuCount"] = os.cpu_count() or 1
        available = meminfo_kib(read_text(self.root, "proc/meminfo") or "", "MemAvailable")
        if available is not None:
            body["memAvailableMiB"] = available // 1024
        try:
            usage = shutil.disk_usage(self.data_dir)
            body["diskFreeMiB"] = usage.free >> 20
            body["diskTotalMiB"] = usage.total >> 20
        except OSError:
            pass
        clock = self.clock()
        if clock is not None:
            body["clockSynced"] = clock.synced
            body["clockOffsetMicros"] = clock.offset_micros
            body["clockMaxErrorMicros"] = clock.max_error_micros
        if self.ups is not None:
            reading = self.ups()
            if isinstance(reading.get("status"), str):
                body["upsStatus"] = reading["status"]
            else:
                body["upsError"] = str(reading.get("error", "upsc gave no ups.status"))
        body["degraded"] = health_reasons(body)
        return body

    def observe(self, now: int) -> Observation:
        body = self.host()
        status = self.status()
        body["chainReachable"] = status.chain_head is not None
        if status.chain_head is not None:
            body["chainHead"] = status.chain_head
        body["lastPublishedSequence"] = status.last_published_sequence
        body["outboxDepth"] = status.outbox_depth
        body["uptimeSeconds"] = status.uptime_seconds
        return Observation(kind=Kind.HEALTH, body=body, observed_at=now)
