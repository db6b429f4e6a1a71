"""Parsing of ids, addresses, domain references and cursors in API requests."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from api.fields import KindName
from api.params import (
    FACILITY_PATTERN,
    FAILED_PATTERN,
    Cursor,
    parse_address,
    parse_cursor,
    parse_facility,
    parse_failed_domain,
    parse_kind,
    parse_tx_hash,
)
from redundancy.domains import Dimension, Kind, domain_id, facility_id

ADDRESS = Account.from_key(b"\x01" * 32).address


def test_facility_by_name_is_hashed_like_the_registry_and_case_folded() -> None:
    ref = parse_facility("FRA1")
    assert (ref.id, ref.name) == (facility_id("fra1"), "fra1")
    assert ref.hex == "0x" + facility_id("fra1").hex()


def test_facility_by_id_keeps_the_bytes() -> None:
    fid = facility_id("ams1")
    ref = parse_facility("0x" + fid.hex().upper())
    assert (ref.id, ref.name) == (fid, None)


@pytest.mark.parametrize("bad", ["0x12", "0x" + "g" * 64, "0x" + "ab" * 33, "fra 1", "-x", "é", ""])
def test_malformed_facility_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_facility(bad)


def test_addresses_checksummed_lower_or_upper_are_accepted() -> None:
    assert parse_address(ADDRESS) == ADDRESS
    assert parse_address(ADDRESS.lower()) == ADDRESS
    assert parse_address("0x" + ADDRESS[2:].upper()) == ADDRESS


def test_a_wrong_checksum_is_refused() -> None:
    flipped = ADDRESS[:-1] + (ADDRESS[-1].lower() if ADDRESS[-1].isupper() else ADDRESS[-1].upper())
    if flipped[-1].isdigit():  # the last character is a digit: flip another letter
        i = next(i for i in range(2, 42) if ADDRESS[i].isalpha())
        flipped = ADDRESS[:i] + ADDRESS[i].swapcase() + ADDRESS[i + 1 :]
    with pytest.raises(ValueError, match="checksum"):
        parse_address(flipped)


@pytest.mark.parametrize("bad", ["0x1234", ADDRESS[2:], ADDRESS + "00", "0x" + "z" * 40])
def test_malformed_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_address(bad)


def test_failed_domain_by_name_or_id() -> None:
    assert parse_failed_domain("power:ERCOT") == (
        Dimension.POWER,
        domain_id(Dimension.POWER, "ercot"),
    )
    did = domain_id(Dimension.COUNTRY, "us")
    assert parse_failed_domain("country:0x" + did.hex()) == (Dimension.COUNTRY, did)
    assert parse_failed_domain("facility:fra1") == (Dimension.FACILITY, facility_id("fra1"))


@pytest.mark.parametrize("bad", ["ercot", "power:", "planet:mars", ":x", "power:" + "x" * 201])
def test_malformed_failed_domain_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_failed_domain(bad)


def test_kinds_by_name_or_number() -> None:
    assert parse_kind("Geography") == Kind.GEOGRAPHY
    assert parse_kind("5") == Kind.HEALTH
    with pytest.raises(ValueError, match="unknown proof kind"):
        parse_kind("weather")


def test_cursor_round_trips_and_orders_by_position() -> None:
    assert parse_cursor(str(Cursor(12, 3))) == Cursor(12, 3)
    assert Cursor(12, 3) < Cursor(12, 4) < Cursor(13, 0)
    for bad in ("12", "a-b", "-1-2", "1-2-3"):
        with pytest.raises(ValueError):
            parse_cursor(bad)


def test_tx_hash_is_normalised_to_lower_case() -> None:
    assert parse_tx_hash("0x" + "AB" * 32) == "0x" + "ab" * 32
    with pytest.raises(ValueError):
        parse_tx_hash("0x" + "ab" * 31)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(FACILITY_PATTERN), st.text(max_size=70)))
def test_the_schema_pattern_says_exactly_which_facilities_parse(value: str) -> None:
    matches = re.fullmatch(FACILITY_PATTERN, value) is not None
    try:
        parse_facility(value)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == matches


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(FAILED_PATTERN), st.text(max_size=40)))
def test_the_schema_pattern_says_exactly_which_failed_domains_parse(value: str) -> None:
    matches = re.fullmatch(FAILED_PATTERN, value) is not None
    try:
        parse_failed_domain(value)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == matches


def test_the_kind_choices_are_the_registrys_kinds() -> None:
    names = {k.name.lower() for k in Kind} | {str(int(k)) for k in Kind}
    assert set(get_args(KindName)) == names
    assert all(parse_kind(name) in Kind for name in names)
