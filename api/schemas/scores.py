"""Redundancy scores of the current committee, and what-if failures."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic, DomainPublic


class DimensionScorePublic(BaseModel):
    dimension: str
    nakamoto: int = Field(description="fewest domains whose failure halts consensus")
    tolerance: int = Field(description="whole domains that may fail with consensus live (N - 1)")
    hhi_bps: int = Field(description="Herfindahl-Hirschman concentration of stake by domain")
    largest_domain: DomainPublic | None
    largest_share_bps: int
    domain_count: int


class ScoresPublic(BaseModel):
    block: BlockPublic
    epoch: int
    total_stake_wei: str
    score: int = Field(description="redundancy score: the least tolerance over the dimensions")
    weakest: str = Field(description="the first dimension with the least tolerance")
    configuration_class: str = Field(
        description="empty, single_site, unprotected, active_passive, active_active"
    )
    class_description: str
    dimensions: list[DimensionScorePublic]


class RemainingPublic(BaseModel):
    dimension: str
    tolerance: int | None = Field(
        description="further whole domains that may fail with consensus live (null: halted)"
    )


class WhatIfPublic(BaseModel):
    block: BlockPublic
    epoch: int
    failed: list[DomainPublic]
    failed_members: list[str] = Field(description="committee members in a failed domain")
    offline_stake_wei: str
    total_stake_wei: str
    offline_share_bps: int
    live: bool = Field(description="consensus survives: 3 * offline < total")
    score: int | None = Field(
        description="further whole-domain failures tolerated, least over dimensions (null: halted)"
    )
    weakest: str | None
    dimensions: list[RemainingPublic]
    score_before: int
