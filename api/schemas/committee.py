"""The committee of the current epoch: members, stake, domains, stake by domain per dimension."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic, DomainPublic


class MemberPublic(BaseModel):
    address: str
    stake_wei: str
    share_bps: int = Field(description="share of the committee's stake")
    facility_name: str | None
    domains: list[DomainPublic] = Field(description="the member's domain in every dimension")


class DomainStakePublic(BaseModel):
    domain: DomainPublic
    stake_wei: str
    share_bps: int
    members: int


class DimensionStakePublic(BaseModel):
    """Committee stake by domain in one dimension, largest first: consensus halts once failed
    domains hold at least a third of the stake (halt_share_bps)."""

    dimension: str
    domains: list[DomainStakePublic]


class DiversityRulePublic(BaseModel):
    dimension: str
    max_members: int = Field(description="members per domain (0: no cap)")
    min_distinct: int
    max_share_bps: int = Field(description="stake share per domain (0: no cap)")


class DiversityPolicyPublic(BaseModel):
    committee_size: int
    min_tolerance: int
    rules: list[DiversityRulePublic]


class CommitteePublic(BaseModel):
    block: BlockPublic
    epoch: int = Field(description="0 before the first selection")
    started_at: int
    total_stake_wei: str
    halt_share_bps: int = Field(
        description="offline share at which consensus halts: 3 * offline >= total (1/3)"
    )
    members: list[MemberPublic]
    stake_by_domain: list[DimensionStakePublic]
    policy: DiversityPolicyPublic
