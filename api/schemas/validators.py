"""Validators: stake, facility, node hardware, eligibility and why not."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic, DomainPublic


class HardwarePublic(BaseModel):
    """The validator's node as its facility's attestor proved it (hardware proof)."""

    node: str
    facility_id: str = Field(description="facility whose attestor attested the node")
    domain: DomainPublic | None = Field(description="vendor/model/firmware domain")
    valid_until: int
    fresh: bool


class ValidatorPublic(BaseModel):
    address: str
    facility_id: str
    facility_name: str | None
    stake_wei: str = Field(description="bonded stake in wei (decimal string)")
    bonded_at: int = Field(description="when it registered (unix seconds): bonded since")
    eligible_from: int = Field(
        description="when its bond is old enough for selection (unix seconds): its bonding time if"
        " bonded by the first committee's selection (or none selected yet), else bonding time +"
        " the policy's minimum epoch; later if it is benched (it allowed an emergency selection)"
    )
    bond_seq: int = Field(description="which registration of the registry its bond was (1, 2, ...)")
    eligible: bool = Field(description="eligible for committee selection at this block")
    ineligible_reasons: list[str]
    in_committee: bool
    hardware: HardwarePublic


class ValidatorsPublic(BaseModel):
    block: BlockPublic
    count: int
    validators: list[ValidatorPublic]


class ValidatorDetailPublic(BaseModel):
    block: BlockPublic
    validator: ValidatorPublic
