"""Power: grid (balancing authority), independent feeds, UPS and generator, from config; plus a
live UPS reading where NUT's ``upsc`` is installed and ``power.ups_name`` names a UPS.

Evidence body (``upsReading`` only with ``ups_name``; on failure it holds ``{"error": ...}``)::

    {"grid": "entso-e/amprion", "feeds": 2, "ups": true, "generator": true,
     "upsReading": {"name": "rack1@localhost", "status": "OL", "batteryChargePct": 100,
                    "batteryRuntimeSeconds": 2460, "inputVoltageDeciV": 2301, "loadPct": 23}}

NUT reports decimals ("230.1"); they are turned into integers in stated units (deci-volts),
because evidence is canonical JSON without floats.
"""

from __future__ import annotations

import subprocess
from typing import Any

from attestor.probes import Observation
from attestor.settings import PowerSettings
from redundancy.domains import Dimension, Kind, domain_id
from redundancy.sitecondition import UPS_VARIABLES, parse_upsc

__all__ = ["UPS_VARIABLES", "PowerProbe", "parse_upsc", "read_ups"]


def read_ups(upsc: str, ups_name: str, timeout: float = 5.0) -> dict[str, Any]:
    """Run ``upsc <ups_name>``; the reading, or ``{"error": ...}`` saying why there is none."""
    try:
        done = subprocess.run(
            [upsc, ups_name], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return {"name": ups_name, "error": f"{upsc} not installed"}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"name": ups_name, "error": f"{upsc} failed: {type(exc).__name__}"}
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {"name": ups_name, "error": f"{upsc} exited {done.returncode}: {reason}"}
    return {"name": ups_name, **parse_upsc(done.stdout)}


class PowerProbe:
    kind = Kind.POWER
    subject: bytes | None = None

    def __init__(self, settings: PowerSettings) -> None:
        self.settings = settings

    def observe(self, now: int) -> Observation:
        s = self.settings
        body: dict[str, Any] = {
            "grid": s.grid,
            "feeds": s.feeds,
            "ups": s.ups,
            "generator": s.generator,
        }
        if s.ups_name is not None:
            body["upsReading"] = read_ups(s.upsc, s.ups_name)
        return Observation(
            kind=Kind.POWER,
            body=body,
            observed_at=now,
            domain_id=domain_id(Dimension.POWER, s.grid),
        )
