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
