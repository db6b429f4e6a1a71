"""Probes: each establishes one kind of fact about the site and returns it as an Observation.

An observation becomes a proof in ``issuer.py``: its body goes into the device-signed evidence
envelope (canonical JSON, integers only), its domain ids and coordinates into the attestation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from redundancy.domains import Kind

ZERO32 = bytes(32)


@dataclass(frozen=True)
class Observation:
    """One probe's facts at one time."""

    kind: Kind
    body: dict[str, Any]
    observed_at: int
    subject: bytes | None = None  # None: the facility itself (every kind but hardware)
    domain_id: bytes = ZERO32
    secondary_domain_id: bytes = ZERO32
    latitude_e6: int = 0
    longitude_e6: int = 0


class Probe(Protocol):
    """Something that observes one kind of fact (for one subject)."""

    @property
    def kind(self) -> Kind: ...

    @property
    def subject(self) -> bytes | None: ...

    def observe(self, now: int) -> Observation:
        """Establish the facts now; raises ProbeError if a required one cannot be known."""
        ...
