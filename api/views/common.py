"""Small conversions every view uses."""

from __future__ import annotations

from api.names import NameBook
from api.reader import Head
from api.schemas.common import BlockPublic, DomainPublic
from redundancy.domains import Dimension

ZERO32 = bytes(32)


def hx(value: bytes) -> str:
    return "0x" + value.hex()


def block_public(head: Head) -> BlockPublic:
    return BlockPublic(number=head.number, hash=head.hash, timestamp=head.timestamp)


def domain_public(dimension: Dimension, domain: bytes, names: NameBook) -> DomainPublic:
    name = names.facility(domain) if dimension == Dimension.FACILITY else names.domain(domain)
    return DomainPublic(dimension=dimension.name.lower(), id=hx(domain), name=name)


def share_bps(part: int, total: int) -> int:
    return 10_000 * part // total if total else 0
