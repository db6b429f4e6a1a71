"""Parsing of ids in paths and queries: facility ids or names, addresses, domain references and
pagination cursors. Pure functions raising ValueError; ``fields.py`` binds them to parameters so a
malformed value is a 422 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_utils import is_checksum_address, to_checksum_address

from redundancy.domains import Dimension, Kind, domain_id, facility_id, parse_domain_ref

_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURSOR = re.compile(r"^([0-9]{1,12})-([0-9]{1,6})$")
_DIMENSIONS = "|".join(d.name.lower() for d in Dimension)
_FAILED = re.compile(rf"^({_DIMENSIONS}):[ ]*[!-~][ -~]{{0,199}}$")

#: The patterns the OpenAPI schema shows. They say exactly what the parsers below accept (so a
#: schema-valid value is never refused), except what a pattern cannot say: an address's EIP-55
#: checksum. A name never starts with "0x": that is a malformed id, not a name.
FACILITY_PATTERN = (
    r"^(0x[0-9a-fA-F]{64}"  # an id
    r"|[A-Za-z1-9][A-Za-z0-9._-]{0,63}|0|0[A-WYZa-wyz0-9._-][A-Za-z0-9._-]{0,62})$"  # a name
)
ADDRESS_PATTERN = _ADDRESS.pattern
TX_PATTERN = _BYTES32.pattern
CURSOR_PATTERN = _CURSOR.pattern
FAILED_PATTERN = _FAILED.pattern


@dataclass(frozen=True, slots=True)
class FacilityRef:
    """A facility named in a request: its id, and the name it was given by (if any)."""

    id: bytes
    name: str | None

    @property
    def hex(self) -> str:
        return "0x" + self.id.hex()


def parse_facility(value: str) -> FacilityRef:
    """``0x`` + 64 hex digits, or a facility name (``fra1``) hashed as the registry does."""
    if value[:2] in ("0x", "0X"):
        if not _BYTES32.fullmatch(value):
            raise ValueError("a facility id is 0x followed by 64 hex digits")
        return FacilityRef(bytes.fromhex(value[2:]), None)
    if not _NAME.fullmatch(value):
        raise ValueError(
            "a facility is 0x + 64 hex digits, or a name of letters, digits, '.', '_', '-' "
            "(at most 64, starting with a letter or digit)"
        )
    name = value.lower()
    return FacilityRef(facility_id(name), name)


def parse_address(value: str) -> str:
    """A 20-byte address as hex: checksummed (EIP-55), or all lower or upper case."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError("an address is 0x followed by 40 hex digits")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return to_checksum_address(value)


def parse_tx_hash(value: str) -> str:
    if not _BYTES32.fullmatch(value):
        raise ValueError("a transaction hash is 0x followed by 64 hex digits")
    return value.lower()


def parse_kind(value: str) -> Kind:
    """A proof kind by name (``power``) or number (``1``)."""
    text = value.strip().lower()
    for kind in Kind:
        if text in (kind.name.lower(), str(int(kind))):
            return kind
    known = ", ".join(k.name.lower() for k in Kind)
    raise ValueError(f"unknown proof kind {value!r} (known: {known})")


def parse_failed_domain(value: str) -> tuple[Dimension, bytes]:
    """``power:ercot`` (a name, hashed as the registry does) or ``power:0x<64 hex>`` (an id).
    Names are printable ASCII (give the id for others)."""
    if not _FAILED.fullmatch(value):
        raise ValueError(
            f"a failed domain is '<dimension>:<name>' or '<dimension>:0x<id>', the dimension one "
            f"of {_DIMENSIONS.replace('|', ', ')}, the name printable ASCII (200 at most)"
        )
    dimension, name = parse_domain_ref(value)
    name = name.strip()
    if _BYTES32.fullmatch(name):
        return dimension, bytes.fromhex(name[2:])
    return dimension, domain_id(dimension, name)


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A position in the attestation log: the (block, log index) of the last item returned."""

    block: int
    log_index: int

    def __str__(self) -> str:
        return f"{self.block}-{self.log_index}"


def parse_cursor(value: str) -> Cursor:
    found = _CURSOR.fullmatch(value)
    if not found:
        raise ValueError("a cursor is '<block>-<log index>' as returned in next_cursor")
    return Cursor(int(found.group(1)), int(found.group(2)))
