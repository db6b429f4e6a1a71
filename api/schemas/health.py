"""Liveness of the API and its view of the chain."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic


class DeploymentPublic(BaseModel):
    chain_id: int
    registry: str
    selector: str
    settlement: str
    deploy_block: int


class HealthPublic(BaseModel):
    status: str = Field(description="ok, or unavailable (then HTTP 503)")
    chain_reachable: bool
    reason: str | None = Field(description="why the chain is unavailable")
    block: BlockPublic | None = Field(description="the latest block seen (last known if down)")
    block_age_s: int | None = Field(description="wall-clock seconds since that block's timestamp")
    last_poll_ms: int | None = Field(description="milliseconds since the last poll of the chain")
    deployment: DeploymentPublic
    version: str
