"""Canonical domain ids."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from redundancy.domains import (
    Dimension,
    canonical_domain,
    domain_id,
    facility_id,
    hardware_domain,
    parse_domain_ref,
)


def test_domain_id_is_keccak_of_canonical_lowercase_string() -> None:
    assert canonical_domain(Dimension.POWER, "  ERCOT   Texas ") == "power:ercot texas"
    assert domain_id(Dimension.POWER, "ERCOT Texas") == keccak(text="power:ercot texas")


def test_same_value_in_different_dimensions_differs() -> None:
    assert domain_id(Dimension.COUNTRY, "nl") != domain_id(Dimension.METRO, "nl")


def test_facility_and_hardware_ids() -> None:
    assert facility_id("FRA1") == keccak(text="facility:fra1")
    assert hardware_domain("Dell", "PowerEdge R650", "2.19.1") == keccak(
        text="hardware:dell/poweredge r650/2.19.1"
    )


def test_empty_value_is_refused() -> None:
    with pytest.raises(ValueError, match="empty power"):
        domain_id(Dimension.POWER, "   ")


def test_parse_domain_ref() -> None:
    assert parse_domain_ref("power:ercot") == (Dimension.POWER, "ercot")
    with pytest.raises(ValueError, match="unknown dimension 'grid'"):
        parse_domain_ref("grid:ercot")
    with pytest.raises(ValueError, match="not of the form"):
        parse_domain_ref("power")


def test_parse_domain_ref_keeps_colons_in_the_value_and_names_the_known_dimensions() -> None:
    assert parse_domain_ref("network:as:174") == (Dimension.NETWORK, "as:174")
    assert parse_domain_ref(" Power :x") == (Dimension.POWER, "x")
    for bad in ("power:", "power: ", "power"):
        with pytest.raises(ValueError, match=r"is not of the form '<dimension>:<value>'$"):
            parse_domain_ref(bad)
    known = "facility, metro, country, power, network, provider, hardware"
    with pytest.raises(ValueError) as caught:
        parse_domain_ref("grid:ercot")
    assert str(caught.value) == f"unknown dimension 'grid' in 'grid:ercot' (known: {known})"
