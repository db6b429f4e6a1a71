"""Measured RTTs between facilities, checked against the distance their coordinates claim."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic


class LatencyReportPublic(BaseModel):
    """One end's newest accepted report of the pair (LatencyReported)."""

    facility_id: str = Field(description="the end that measured and signed")
    facility_name: str | None
    rtt_micros: int = Field(description="the round trip this end measured")
    measured_at: int
    exchange_id: str = Field(description="keccak256 of the exchange's two nonces")
    fresh: bool = Field(description="measured_at is within the policy's maximum age")
    tx: str
    block_number: int


class LatencyLinkPublic(BaseModel):
    """A pair of facilities and what their RTT reports prove. Both ends measure the round trip
    in one exchange and each signs what it measured; the pair's RTT is the larger of the two
    fresh reports, so a single lying end can neither shrink it nor make itself look closer."""

    facility_id: str = Field(description="one end (the smaller id)")
    facility_name: str | None
    peer_facility_id: str
    peer_name: str | None
    rtt_micros: int | None = Field(
        description="the pair's two-sided RTT: the larger fresh report (null: one end only, or "
        "with a landmark, a report measured before its position was fixed)"
    )
    measured_at: int | None = Field(description="the older of the two fresh reports' times")
    rtt_distance_bound_m: int | None = Field(
        description="furthest apart the two-sided RTT allows (fibre)"
    )
    distance_lower_bound_m: int | None = Field(
        description="least distance between the positions (null: a position is unknown)"
    )
    consistent: bool | None = Field(
        description="distance_lower_bound_m <= rtt_distance_bound_m + tolerance (null: unknown)"
    )
    flagged_on_chain: bool = Field(
        description="one end's standing flag record names the other: this pair's contradiction "
        "was recorded on-chain (flagContradiction)"
    )
    reports: list[LatencyReportPublic] = Field(
        description="each end's newest accepted report (a replayed or older one is refused)"
    )
    tx: str = Field(description="the newest report's transaction")
    block_number: int


class LatencyLinksPublic(BaseModel):
    block: BlockPublic
    tolerance_m: int
    max_measurement_age_s: int
    max_anchor_age_blocks: int = Field(
        description="how many blocks old a measurement's anchor may be when it is relayed"
    )
    links: list[LatencyLinkPublic] = Field(description="one per measured pair")
