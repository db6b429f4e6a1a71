"""Models every resource shares: the block a response reflects, domains, locations, errors.

Conventions: ids and hashes are ``0x``-prefixed lower-case hex; addresses are EIP-55 checksummed;
amounts of wei are decimal strings (they exceed what a JSON number holds exactly); shares are
basis points (1/10,000); times are Unix seconds; coordinates are micro-degrees.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class BlockPublic(BaseModel):
    """The block every value in a response was read at."""

    number: int = Field(description="block number")
    hash: str = Field(description="block hash")
    timestamp: int = Field(description="block timestamp (Unix seconds)")


class DomainPublic(BaseModel):
    """A failure domain: its id as the chain stores it, and its name where evidence discloses it."""

    dimension: str = Field(
        description="facility, metro, country, power, network, provider, hardware"
    )
    id: str = Field(description="keccak256 of '<dimension>:<value>' (the facility id for facility)")
    name: str | None = Field(
        default=None,
        description="the value, if an evidence document on chain names it (checked by hash)",
    )


class LocationPublic(BaseModel):
    latitude_e6: int = Field(description="latitude in micro-degrees")
    longitude_e6: int = Field(description="longitude in micro-degrees")
    latitude: float = Field(description="latitude in degrees (for display)")
    longitude: float = Field(description="longitude in degrees (for display)")


class ErrorPublic(BaseModel):
    """A 404, 502 or 503 answer."""

    detail: str = Field(description="what went wrong, in one line")
    error: str = Field(description="machine-readable error code")
    retry_after_s: int | None = Field(
        default=None, description="for 503: seconds after which a retry may succeed"
    )


def location(lat_e6: int, lon_e6: int) -> LocationPublic:
    return LocationPublic(
        latitude_e6=lat_e6, longitude_e6=lon_e6, latitude=lat_e6 / 1e6, longitude=lon_e6 / 1e6
    )


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorPublic, "description": "the chain is unreachable (retry after a while)"},
    502: {"model": ErrorPublic, "description": "the chain answered with an error"},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorPublic, "description": "nothing with that id at this block"},
}
