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
