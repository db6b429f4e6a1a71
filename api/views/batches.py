"""GET /batches: the settlement batches the ledger accepted, read from its BatchCommitted events."""

from __future__ import annotations

from api.schemas.batches import BatchesPublic, BatchPublic
from api.snapshot import Snapshot
from api.views.common import block_public

NO_BATCH = "no settlement batch committed yet: batches appear once validator nodes commit them"


def batches(snap: Snapshot) -> BatchesPublic:
    ledger = snap.reader.settlement
    event = ledger.contract.events.BatchCommitted()
    logs = event.get_logs(from_block=snap.reader.deployment.deploy_block, to_block=snap.block)
    out = [
        BatchPublic(
            epoch=int(log["args"]["epoch"]),
            first_sequence=int(log["args"]["firstSequence"]),
            last_sequence=int(log["args"]["lastSequence"]),
            state_root="0x" + bytes(log["args"]["stateRoot"]).hex(),
            signers=[str(a) for a in log["args"]["signers"]],
            stake_signed_wei=str(log["args"]["signedStake"]),
            committee_stake_wei=str(log["args"]["totalStake"]),
            tx=log["transactionHash"].to_0x_hex(),
            block_number=int(log["blockNumber"]),
        )
        for log in logs
    ]
    return BatchesPublic(
        block=block_public(snap.head),
        settlement_contract=ledger.address,
        batches=out,
        next_cursor=None,
        note=None if out else NO_BATCH,
    )
