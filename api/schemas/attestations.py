"""Site proofs as published on chain, and their independent verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic, DomainPublic, LocationPublic


class AttestationSummaryPublic(BaseModel):
    tx: str
    index: int | None = Field(description="position in the submission (null if not decodable)")
    block_number: int
    log_index: int
    facility_id: str
    facility_name: str | None
    attestor: str
    sequence: int
    kind: str
    subject: str = Field(description="the facility id, or for hardware the node (left-padded)")
    valid_until: int
    issued_at: int | None
    expires_at: int | None
    domains: list[DomainPublic] = Field(description="the domain(s) the proof asserts")
    location: LocationPublic | None = Field(description="claimed coordinates (geography proofs)")


class AttestationsPublic(BaseModel):
    block: BlockPublic
    items: list[AttestationSummaryPublic] = Field(description="oldest first")
    next_cursor: str | None = Field(description="pass as cursor for the next page (null: last)")


class SignaturePublic(BaseModel):
    v: int
    r: str
    s: str


class AttestationPublic(BaseModel):
    """One proof of a submission, decoded from calldata, accepted or not."""

    block: BlockPublic
    tx: str
    index: int
    block_number: int
    status: str = Field(description="accepted, rejected (skipped in a batch), or malformed")
    rejection: str | None = Field(description="the registry's error for a rejected proof")
    proofs_in_tx: int
    facility_id: str | None
    facility_name: str | None
    kind: str | None
    subject: str | None
    sequence: int | None
    issued_at: int | None
    expires_at: int | None
    domains: list[DomainPublic]
    location: LocationPublic | None
    evidence_hash: str | None
    evidence: Any = Field(
        default=None,
        description="the evidence document, parsed (null if it is not JSON or breaks the bounds)",
    )
    evidence_problem: str | None = Field(
        default=None,
        description="why evidence is null: not UTF-8, not JSON, over 64 KiB or nested too deep",
    )
    evidence_hex: str | None
    signature: SignaturePublic | None
    declared_domain_separator: str
    problem: str | None = Field(default=None, description="why a malformed proof did not decode")


class CheckPublic(BaseModel):
    id: str
    ok: bool
    detail: str


class VerificationPublic(BaseModel):
    """What ``redundancy-verify-attestation --json`` prints for this proof, and the block."""

    block: BlockPublic
    tx: str
    index: int
    facility: str
    kind: str
    sequence: int
    ok: bool
    checks: list[CheckPublic]
