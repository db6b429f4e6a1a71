"""Measured RTTs between facilities, checked against the distance their coordinates claim."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic


class LatencyLinkPublic(BaseModel):
    facility_id: str = Field(description="the measuring facility")
    facility_name: str | None
    peer_facility_id: str
    peer_name: str | None
    rtt_micros: int
    measured_at: int
    rtt_distance_bound_m: int = Field(description="furthest apart the RTT allows (fibre)")
    distance_lower_bound_m: int | None = Field(
        description="least distance between the positions (null: a position is unknown)"
    )
    consistent: bool | None = Field(
        description="distance_lower_bound_m <= rtt_distance_bound_m + tolerance (null: unknown)"
    )
    flagged_on_chain: bool = Field(description="the selector flagged the pair for this report")
    tx: str
    block_number: int


class LatencyLinksPublic(BaseModel):
    block: BlockPublic
    tolerance_m: int
    max_measurement_age_s: int
    links: list[LatencyLinkPublic] = Field(description="latest measurement per ordered pair")
