"""GET /batches: the settlement batches the ledger accepted, read from its BatchCommitted events."""

from __future__ import annotations

from api.blockview import BlockView
from api.schemas.batches import BatchesPublic, BatchPublic
from api.views.common import block_public

NO_BATCH = "no settlement batch committed yet: batches appear once validator nodes commit them"


def batches(snap: BlockView) -> BatchesPublic:
    ledger = snap.reader.settlement
    committed = ledger.committed_batches(snap.reader.deployment.deploy_block, snap.block)
    out = [
        BatchPublic(
            epoch=b.batch.epoch,
            first_sequence=b.batch.first_sequence,
            last_sequence=b.batch.last_sequence,
            state_root="0x" + b.batch.state_root.hex(),
            signers=b.signers,
            stake_signed_wei=str(b.signed_stake),
            committee_stake_wei=str(b.total_stake),
            tx=b.tx,
            block_number=b.block,
        )
        for b in committed
    ]
    return BatchesPublic(
        block=block_public(snap.head),
        settlement_contract=ledger.address,
        batches=out,
        next_cursor=None,
        note=None if out else NO_BATCH,
    )
