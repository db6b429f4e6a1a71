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
    """The facility is proven (by a two-sided RTT with a landmark) to lie within radius_m of
    center, until valid_until."""

    landmark_facility_id: str
    landmark_name: str | None
    center: LocationPublic
    radius_m: int
    rtt_micros: int = Field(description="the larger of the two ends' reports")
    valid_until: int


class FlagPublic(BaseModel):
    """What contradicted the facility's claim: a landmark's disc, or a peer's claim and the
    pair's two-sided RTT."""

    against_facility_id: str
    against_name: str | None
    by_landmark: bool = Field(description="a landmark raised it: a proof, not a suspicion")
    rtt_micros: int
    raised_at: int
    holds: bool = Field(
        description="the facility's current claim is still contradicted (else it no longer counts)"
    )


class GeographyPublic(BaseModel):
    flagged: bool = Field(description="a two-sided RTT contradicts the claimed coordinates")
    flag: FlagPublic | None = Field(description="the flag record, if one was raised")
    landmark: LocationPublic | None = Field(
        description="the position the owner fixed, if this facility is a landmark"
    )
    proven_disc: DiscPublic | None = Field(
        description="the tightest fresh disc RTTs to landmarks prove the facility lies in"
    )
    discs: list[DiscPublic] = Field(description="every fresh landmark disc (on-chain)")


class ConditionPublic(BaseModel):
    """Whether the site is degraded, from its latest accepted health evidence."""

    degraded: bool = Field(description="the latest health evidence shows a reason below")
    reasons: list[str] = Field(
        description="ups-on-battery, ups-low-battery, clock-unsynchronised, disk-nearly-full: "
        "recomputed from the evidence's fields (upsStatus, clockSynced, diskFreeMiB/diskTotalMiB)"
    )
    claimed: list[str] | None = Field(
        description="the evidence's own degraded list (null: evidence version 1, or malformed)"
    )
    consistent: bool | None = Field(
        description="whether the claim equals the recomputed reasons (null: nothing claimed)"
    )
    ups_status: str | None = Field(description="NUT ups.status (null: no UPS reading)")
    observed_at: int | None = Field(description="when the attestor observed it (unix seconds)")
    evidence_version: int | None
    fresh: bool = Field(description="whether that health proof is still valid")
    proof: ProofRefPublic


class IdentityPublic(BaseModel):
    """What signs the facility's evidence, as bound on chain (``setTpmIdentity``)."""

    backend: str = Field(
        description="tpm: the facility bound its proofs to a TPM attestation key, and verifiers "
        "refuse its evidence unless that AK quoted it (the hardware domain is the measured "
        "firmware); file: an Ed25519 key in a file under the operator's CA, which is weaker "
        "(a copied key file signs anywhere, the hardware domain is configured)"
    )
    tpm_ak_certificate: str | None = Field(
        description="sha256 of the bound AK certificate (published on chain); null for file"
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
    condition: ConditionPublic | None = Field(
        description="degraded or not, from the latest health evidence (null: none decodable)"
    )
    identity: IdentityPublic


class FreshnessPolicyPublic(BaseModel):
    max_lifetime_s: dict[str, int] = Field(description="maximum proof lifetime per kind")
    max_future_skew_s: int
    required_kinds: list[str]
    require_tpm: list[str] = Field(
        description="kinds the registry accepts only from a facility bound to a TPM identity"
    )


class FacilitiesPublic(BaseModel):
    block: BlockPublic
    count: int
    freshness_policy: FreshnessPolicyPublic
    facilities: list[FacilityPublic]


class FacilityDetailPublic(BaseModel):
    block: BlockPublic
    facility: FacilityPublic
