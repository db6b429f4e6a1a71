"""Facilities: domains, proofs and their freshness, staleness, geography."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic, DomainPublic, LocationPublic


class ProofRefPublic(BaseModel):
    """Where a proof is on chain: GET /attestations/{tx}/{index} shows and verifies it."""

    tx: str
    index: int | None = Field(description="position in the submission (null if not decodable)")
    block_number: int
    sequence: int


class ProofFreshnessPublic(BaseModel):
    kind: str
    required: bool = Field(description="whether the freshness policy requires this kind")
    valid_until: int = Field(description="when the latest proof stops counting (0: never proven)")
    fresh: bool = Field(description="valid_until is after the block's timestamp")
    expires_in_s: int | None = Field(
        description="seconds from the block's timestamp to valid_until (negative: expired)"
    )
    lifetime_s: int | None = Field(
        description="the latest proof's lifetime (expiresAt - issuedAt), if its calldata decoded"
    )
    latest: ProofRefPublic | None = Field(description="the latest accepted proof of this kind")


class DiscPublic(BaseModel):
    """The facility is proven (by RTT to a landmark) to lie within radius_m of center."""

    landmark_facility_id: str
    landmark_name: str | None
    center: LocationPublic
    radius_m: int
    rtt_micros: int
    measured_at: int


class GeographyPublic(BaseModel):
    flagged: bool = Field(description="an RTT measurement contradicted the claimed coordinates")
    landmark: LocationPublic | None = Field(
        description="the position the owner fixed, if this facility is a landmark"
    )
    proven_disc: DiscPublic | None = Field(
        description="the tightest disc RTTs to landmarks prove the facility lies in"
    )


class FacilityPublic(BaseModel):
    id: str = Field(description="facility id: keccak256('facility:<name>')")
    name: str | None = Field(description="the name, where evidence discloses it (checked by hash)")
    attestor: str
    active: bool
    stale: bool = Field(description="stale facilities' validators are ineligible")
    stale_reasons: list[str] = Field(description="why it is stale (empty when fresh)")
    location: LocationPublic | None = Field(
        description="claimed coordinates (null before a geography proof)"
    )
    domains: list[DomainPublic] = Field(description="the facility's domain per dimension")
    proofs: list[ProofFreshnessPublic] = Field(description="the latest proof of every kind")
    geography: GeographyPublic
    validators: list[str] = Field(description="validators registered at this facility")


class FreshnessPolicyPublic(BaseModel):
    max_lifetime_s: dict[str, int] = Field(description="maximum proof lifetime per kind")
    max_future_skew_s: int
    required_kinds: list[str]


class FacilitiesPublic(BaseModel):
    block: BlockPublic
    count: int
    freshness_policy: FreshnessPolicyPublic
    facilities: list[FacilityPublic]


class FacilityDetailPublic(BaseModel):
    block: BlockPublic
    facility: FacilityPublic
