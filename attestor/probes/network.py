"""Network and provider: the site's upstream ASNs and its hosting provider, from config.

Network evidence body: ``{"asns": ["as3320", "as1299"], "primaryAsn": "as3320"}``; the network
domain is the primary (first) upstream. Provider body: ``{"provider": "equinix"}``.
"""

from __future__ import annotations

from attestor.probes import Observation
from attestor.settings import NetworkSettings, ProviderSettings
from redundancy.domains import Dimension, Kind, domain_id


class NetworkProbe:
    kind = Kind.NETWORK
    subject: bytes | None = None

    def __init__(self, settings: NetworkSettings) -> None:
        self.settings = settings

    def observe(self, now: int) -> Observation:
        asns = list(self.settings.asns)
        return Observation(
            kind=Kind.NETWORK,
            body={"asns": asns, "primaryAsn": asns[0]},
            observed_at=now,
            domain_id=domain_id(Dimension.NETWORK, asns[0]),
        )


class ProviderProbe:
    kind = Kind.PROVIDER
    subject: bytes | None = None

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    def observe(self, now: int) -> Observation:
        name = self.settings.name
        return Observation(
            kind=Kind.PROVIDER,
            body={"provider": name},
            observed_at=now,
            domain_id=domain_id(Dimension.PROVIDER, name),
        )
