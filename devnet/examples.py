"""The example sites, read from their attestor configs ``examples/<site>.toml``: four honest
sites in distinct metros, countries, grids, networks, providers and hardware (fra1, ams1, dal1,
lon1) and one dishonest site (sin1: claims Singapore, its round trips place it by Frankfurt).

Those files are the one copy of the sites' facts (grid, metro, country, coordinates, ASNs,
provider, the validator node's hardware, the emulated one-way delays to the other sites): the
demo runs them as they are, and the devnet world, the tests and the benchmarks take the same
facts from here as ``FacilitySpec``s.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from devnet.toolchain import PROJECT_ROOT
from devnet.world import FacilitySpec

EXAMPLES_DIR = PROJECT_ROOT / "examples"
#: The example sites, in the order the demo lists them; each is ``examples/<name>.toml``.
SITE_NAMES = ("fra1", "ams1", "dal1", "lon1", "sin1")
#: The demo's old world: three equal sites (tolerance 0, active-passive).
THREE_SITES = ("fra1", "ams1", "dal1")
#: The site whose claimed location its own round trips contradict.
DISHONEST_SITE = "sin1"
#: The site whose true position the registry's owner fixes as a landmark in the demo.
LANDMARK_SITE = "fra1"


@dataclass(frozen=True)
class ExampleNode:
    """A validator node an example site's attestor attests (a ``[[hardware.nodes]]`` entry)."""

    address: str
    hardware: tuple[str, str, str]
    """(vendor, model, firmware)"""


@dataclass(frozen=True)
class ExampleSite:
    """One example site: its facility facts, its nodes and its emulated delays, from its config."""

    config: Path
    facility: FacilitySpec
    nodes: tuple[ExampleNode, ...]
    emulated_delay_us: tuple[tuple[str, int], ...]
    """(peer, one-way delay in microseconds) the site's latency responder adds, by peer name."""
    peers: tuple[str, ...] = ()
    """The sites its attestor measures round trips with (``latency.peers``)."""

    @property
    def name(self) -> str:
        return self.facility.name

    @property
    def node(self) -> ExampleNode:
        """The site's first node: the one the demo stakes a validator on."""
        return self.nodes[0]


def facility_spec(name: str, config: dict[str, Any]) -> FacilitySpec:
    """The facility facts of a parsed attestor config. ASNs are lower-cased, as the attestor
    does before it puts them in evidence; the primary (first) ASN is the network domain."""
    geo = config["geography"]
    return FacilitySpec(
        name,
        config["power"]["grid"],
        geo["metro"],
        geo["country"],
        geo["latitude_e6"],
        geo["longitude_e6"],
        config["network"]["asns"][0].strip().lower(),
        config["provider"]["name"],
    )


def read_site(path: Path) -> ExampleSite:
    """An example site from its attestor config."""
    with path.open("rb") as fh:
        config = tomllib.load(fh)
    nodes = tuple(
        ExampleNode(n["address"], (n["vendor"], n["model"], n["firmware"]))
        for n in config.get("hardware", {}).get("nodes", [])
    )
    delays = config.get("latency", {}).get("emulated_delay_us", {})
    return ExampleSite(
        path,
        facility_spec(config["facility"], config),
        nodes,
        tuple((peer, int(us)) for peer, us in delays.items()),
        tuple(str(p["facility"]) for p in config.get("latency", {}).get("peers", [])),
    )


@cache
def example_sites() -> tuple[ExampleSite, ...]:
    """Every example site, in ``SITE_NAMES`` order."""
    return tuple(read_site(EXAMPLES_DIR / f"{name}.toml") for name in SITE_NAMES)


def example_site(name: str) -> ExampleSite:
    """One example site by name (``KeyError`` naming it when there is none)."""
    for site in example_sites():
        if site.name == name:
            return site
    raise KeyError(f"no example site {name!r} (examples: {', '.join(SITE_NAMES)})")


def example_facilities() -> tuple[FacilitySpec, ...]:
    """The example sites' facilities, in ``SITE_NAMES`` order."""
    return tuple(site.facility for site in example_sites())
