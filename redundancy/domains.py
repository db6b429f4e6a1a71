"""Failure-domain dimensions, proof kinds, and canonical domain ids.

A domain id is keccak256 of the canonical string ``"<dimension>:<value>"``, where the value is
stripped, lower-cased and has runs of white space folded to one space. The dimension prefix keeps
``country:nl`` and ``metro:nl`` apart. The same rule names facilities: ``facility:<name>``.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NewType

from eth_utils import keccak

DomainId = NewType("DomainId", bytes)
FacilityId = NewType("FacilityId", bytes)


class Dimension(IntEnum):
    """A failure dimension; the values match the registry's ``DIM_*`` constants."""

    FACILITY = 0
    METRO = 1
    COUNTRY = 2
    POWER = 3
    NETWORK = 4
    PROVIDER = 5
    HARDWARE = 6


class Kind(IntEnum):
    """A proof kind; the values match the registry's ``KIND_*`` constants."""

    HARDWARE = 0
    POWER = 1
    GEOGRAPHY = 2
    NETWORK = 3
    PROVIDER = 4
    HEALTH = 5


#: The dimension(s) each kind asserts: (domainId, secondaryDomainId).
KIND_DIMENSIONS: dict[Kind, tuple[Dimension, ...]] = {
    Kind.HARDWARE: (Dimension.HARDWARE,),
    Kind.POWER: (Dimension.POWER,),
    Kind.GEOGRAPHY: (Dimension.METRO, Dimension.COUNTRY),
    Kind.NETWORK: (Dimension.NETWORK,),
    Kind.PROVIDER: (Dimension.PROVIDER,),
    Kind.HEALTH: (),
}

_SPACE = re.compile(r"\s+")


def canonical_domain(dimension: Dimension, value: str) -> str:
    """The canonical string of a domain: ``"<dimension>:<value>"``, lower-case, spaces folded."""
    folded = _SPACE.sub(" ", value.strip().lower())
    if not folded:
        raise ValueError(f"empty {dimension.name.lower()} domain value")
    return f"{dimension.name.lower()}:{folded}"


def domain_id(dimension: Dimension, value: str) -> DomainId:
    """keccak256 of the canonical domain string."""
    return DomainId(keccak(text=canonical_domain(dimension, value)))


def facility_id(name: str) -> FacilityId:
    """The id of a facility: its domain id in the ``facility`` dimension."""
    return FacilityId(domain_id(Dimension.FACILITY, name))


def hardware_domain(vendor: str, model: str, firmware: str) -> DomainId:
    """The hardware domain id: same vendor, model and firmware share a common-mode defect."""
    return domain_id(Dimension.HARDWARE, f"{vendor}/{model}/{firmware}")


def parse_domain_ref(ref: str) -> tuple[Dimension, str]:
    """Parse ``"power:ercot"`` into its dimension and value (as used by queries)."""
    name, sep, value = ref.partition(":")
    if not sep or not value.strip():
        raise ValueError(f"domain reference {ref!r} is not of the form '<dimension>:<value>'")
    try:
        dimension = Dimension[name.strip().upper()]
    except KeyError:
        known = ", ".join(d.name.lower() for d in Dimension)
        raise ValueError(f"unknown dimension {name!r} in {ref!r} (known: {known})") from None
    return dimension, value
