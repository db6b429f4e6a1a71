"""Geography: claimed coordinates (integer micro-degrees), country and metro, plus RTTs to peer
attestors measured from both ends of signed exchanges (``latency.py``). Evidence body::

    {"latitudeE6": 50110922, "longitudeE6": 8682127, "country": "de", "metro": "frankfurt",
     "rtt": [{"peer": "ams1", "nonce": "...", "responderNonce": "...", "exchangeId": "0x...",
              "rttMicros": 7391, "samples": 5, "responderSignature": "...",
              "responderDeviceCert": "...", "emulatedDelayMicros": 3600, "anchorBlock": 812}],
     "unreachablePeers": [{"peer": "dal1", "reason": "TimeoutError: no answer in time"}]}

``rtt`` holds one entry per peer that answered, sorted by peer: the fastest exchange, the
responder's device signature over both nonces, and (``anchorBlock``) the block the EIP-712
``LatencyMeasurement`` this site signed for it binds; that measurement, and the one the peer
signed for the same exchange, are what a relayer reports to the selector. ``unreachablePeers``
is left out when every peer answered. The attestation carries metro (domainId), country
(secondaryDomainId) and the coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attestor.errors import LatencyError
from attestor.latency import Measurement
from attestor.probes import Observation
from attestor.settings import GeographySettings, PeerSettings
from redundancy.domains import Dimension, Kind, domain_id


class GeographyProbe:
    kind = Kind.GEOGRAPHY
    subject: bytes | None = None

    def __init__(
        self,
        settings: GeographySettings,
        peers: list[PeerSettings],
        measure: Callable[[PeerSettings], Measurement],
    ) -> None:
        self.settings = settings
        self.peers = peers
        self.measure = measure
        self.unreachable: list[str] = []

    def measurements(self) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        answered: list[dict[str, Any]] = []
        missing: list[dict[str, str]] = []
        for peer in sorted(self.peers, key=lambda p: p.facility):
            try:
                answered.append(self.measure(peer).evidence_entry())
            except (LatencyError, OSError) as exc:  # TimeoutError and refusals are OSErrors
                missing.append({"peer": peer.facility, "reason": f"{type(exc).__name__}: {exc}"})
        return answered, missing

    def observe(self, now: int) -> Observation:
        s = self.settings
        answered, missing = self.measurements()
        self.unreachable = [m["peer"] for m in missing]
        body: dict[str, Any] = {
            "latitudeE6": s.latitude_e6,
            "longitudeE6": s.longitude_e6,
            "country": s.country,
            "metro": s.metro,
            "rtt": answered,
        }
        if missing:
            body["unreachablePeers"] = missing
        return Observation(
            kind=Kind.GEOGRAPHY,
            body=body,
            observed_at=now,
            domain_id=domain_id(Dimension.METRO, s.metro),
            secondary_domain_id=domain_id(Dimension.COUNTRY, s.country),
            latitude_e6=s.latitude_e6,
            longitude_e6=s.longitude_e6,
        )
