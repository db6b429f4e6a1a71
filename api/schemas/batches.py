"""Settlement batches: a state root per range of the input log, signed by > 2/3 of the stake.

Read from the SettlementLedger's BatchCommitted events, oldest first.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BlockPublic


class BatchPublic(BaseModel):
    epoch: int = Field(description="committee epoch that signed the batch")
    first_sequence: int = Field(description="first input-log sequence in the batch")
    last_sequence: int = Field(description="last input-log sequence in the batch")
    state_root: str = Field(description="state hash after applying the range")
    signers: list[str] = Field(description="committee members whose signatures were accepted")
    stake_signed_wei: str
    committee_stake_wei: str
    tx: str
    block_number: int


class BatchesPublic(BaseModel):
    block: BlockPublic
    settlement_contract: str | None = Field(description="the deployment's SettlementLedger")
    batches: list[BatchPublic]
    next_cursor: str | None
    note: str | None
