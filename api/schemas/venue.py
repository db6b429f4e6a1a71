"""The venue's nodes as they answer now: serving, and which site's etcd member leads."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VenueNodePublic(BaseModel):
    site: str | None = Field(description="the site the node runs at (null: not named)")
    url: str
    reachable: bool = Field(description="the node answered GET /venue within a second")
    node: str | None = Field(description="the node's id, as it says")
    serving: bool | None = Field(description="applying the log (false: diverged, refusing)")
    seq: int | None = Field(description="the last log sequence it applied")
    etcd_leader: bool | None = Field(
        description="its site's etcd member leads the cluster (null: the member did not answer)"
    )
    etcd_voting: int | None = Field(
        description="voting etcd members, as the cluster lists them to this node (null: unknown)"
    )
    etcd_learners: int | None = Field(
        description="etcd learners (members joining, not voting yet; null: unknown)"
    )
    error: str | None = Field(description="why it is unreachable or its answer unusable")


class VenuePublic(BaseModel):
    """Off-chain: what the venue's nodes say now (not tied to a block)."""

    configured: bool = Field(description="the API knows the venue's nodes (settings or file)")
    leader: str | None = Field(
        description="the site (else node id) whose etcd member leads; null when none says so"
    )
    etcd_voting: int | None = Field(
        description="voting etcd members, as the leader's node (else the first that knows) says"
    )
    etcd_learners: int | None = Field(description="etcd learners, from the same node")
    nodes: list[VenueNodePublic]
