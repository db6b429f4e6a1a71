"""Where the sites are and how far apart: the one-way delays the relays emulate.

A link's one-way delay is the great-circle distance between the two sites' claimed coordinates
over the speed of light in fibre (200 km/ms), times a route factor (fibre follows roads, coasts
and cable landings: 1.5 by default), and never less than the physical floor (the same distance
at route factor 1). The example sites (fra1, ams1, dal1, lon1, sin1) take their coordinates
from their attestor configs (``devnet.examples``), the one copy of their facts (sin1's are its
claim, Singapore); nyc1 and sgp1 exist only for distance experiments and are placed here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from devnet.examples import SITE_NAMES, example_site
from devnet.world import FacilitySpec

FIBRE_KM_PER_MS = 200.0
ROUTE_FACTOR = 1.5
EARTH_RADIUS_KM = 6371.0088
"""The mean radius (IUGG): great circles on it are what "distance" means here."""

#: Sites that are not examples: facilities in other metros, for distance experiments only.
EXTRA_SITES = (
    FacilitySpec("nyc1", "pjm", "new york", "us", 40789543, -74056534, "as6461", "equinix"),
    FacilitySpec("sgp1", "sp-group", "singapore", "sg", 1352083, 103819836, "as7473", "equinix"),
)


@cache
def facilities() -> dict[str, FacilitySpec]:
    """Every site distances are known for, by name."""
    out = {name: example_site(name).facility for name in SITE_NAMES}
    out.update({f.name: f for f in EXTRA_SITES})
    return out


def facility(name: str) -> FacilitySpec:
    try:
        return facilities()[name]
    except KeyError:
        known = ", ".join(sorted(facilities()))
        raise KeyError(f"no coordinates for site {name!r} (known: {known})") from None


def great_circle_km(a: str, b: str) -> float:
    fa, fb = facility(a), facility(b)
    lat1, lon1 = math.radians(fa.latitude_e6 / 1e6), math.radians(fa.longitude_e6 / 1e6)
    lat2, lon2 = math.radians(fb.latitude_e6 / 1e6), math.radians(fb.longitude_e6 / 1e6)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def floor_us(a: str, b: str) -> int:
    """The least one-way delay physics allows between two sites (microseconds, rounded up)."""
    return math.ceil(great_circle_km(a, b) / FIBRE_KM_PER_MS * 1000)


@dataclass(frozen=True)
class DelayMatrix:
    """One-way delays between every ordered pair of sites (symmetric unless a fault says
    otherwise), in microseconds."""

    sites: tuple[str, ...]
    route_factor: float
    one_way_us: dict[tuple[str, str], int]

    @classmethod
    def of(cls, sites: Sequence[str], route_factor: float = ROUTE_FACTOR) -> DelayMatrix:
        delays: dict[tuple[str, str], int] = {}
        for a, b in itertools.permutations(sites, 2):
            fibre = great_circle_km(a, b) / FIBRE_KM_PER_MS * 1000 * route_factor
            delays[a, b] = max(floor_us(a, b), round(fibre))
        return cls(tuple(sites), route_factor, delays)

    @classmethod
    def zero(cls, sites: Sequence[str]) -> DelayMatrix:
        """No emulated distance (loopback, or namespaces without delay)."""
        return cls(tuple(sites), 0.0, {p: 0 for p in itertools.permutations(sites, 2)})

    def rtt_us(self, a: str, b: str) -> int:
        return 0 if a == b else self.one_way_us[a, b] + self.one_way_us[b, a]

    def nearest(self, site: str) -> list[str]:
        """The other sites, nearest first."""
        return sorted((s for s in self.sites if s != site), key=lambda s: (self.rtt_us(site, s), s))

    def quorum_rtt_us(self, leader: str) -> int:
        """The round trip from ``leader`` to the farthest member of its nearest majority: how
        long a commit takes at best when that site leads."""
        need = len(self.sites) // 2  # followers needed besides the leader
        if need == 0:
            return 0
        return self.rtt_us(leader, self.nearest(leader)[need - 1])

    def ack_floor_us(self, gateway: str, leader: str) -> int:
        """The least ack latency physics allows a client at ``gateway``'s site (its own
        gateway) when ``leader`` leads: the round trip to the leader and the leader's round trip
        to its nearest majority."""
        return self.rtt_us(gateway, leader) + self.quorum_rtt_us(leader)

    def measured_ack_floor_ms(
        self, rtts_ms: dict[tuple[str, str], float], gateway: str, leader: str
    ) -> float:
        """``ack_floor_us`` (in ms) from round trips measured through the relays
        (``Fabric.measure_rtts``) instead of the configured delays: the floor of the network as
        emulated, whose relays add their own time to every hop (threads waking to pass bytes
        on: 0.3-0.5 ms per round trip here). What the venue adds is an ack's excess over this;
        its excess over ``ack_floor_us`` also counts the emulator."""
        to_leader = 0.0 if gateway == leader else rtts_ms[gateway, leader]
        need = len(self.sites) // 2
        if need == 0:
            return to_leader
        followers = sorted(rtts_ms[leader, s] for s in self.sites if s != leader)
        return to_leader + followers[need - 1]

    def max_rtt_us(self) -> int:
        return max((self.rtt_us(a, b) for a, b in self.one_way_us), default=0)

    def describe(self) -> str:
        """One line for every figure: how distance was emulated, and the matrix."""
        if not self.one_way_us or self.route_factor == 0:
            return "no emulated distance"
        pairs = ", ".join(
            f"{a}-{b} {self.one_way_us[a, b] / 1000:.1f}"
            for a, b in itertools.combinations(self.sites, 2)
        )
        return (
            f"emulated one-way delays in ms (great circle / {FIBRE_KM_PER_MS:.0f} km/ms x route "
            f"factor {self.route_factor:g}, user-space relays): {pairs}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "route_factor": self.route_factor,
            "one_way_us": {f"{a}>{b}": us for (a, b), us in sorted(self.one_way_us.items())},
        }
