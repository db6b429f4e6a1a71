"""GET /batches: the settlement batches the ledger accepted, from the event index (its
BatchCommitted events, read once in bounded ranges), oldest first, a page at a time."""

from __future__ import annotations

from api.blockview import BlockView
from api.params import Cursor
from api.schemas.batches import BatchesPublic, BatchPublic
from api.views.common import block_public

NO_BATCH = "no settlement batch committed yet: batches appear once validator nodes commit them"


def batches(snap: BlockView, cursor: Cursor | None = None, limit: int = 100) -> BatchesPublic:
    """A page of at most ``limit`` batches after ``cursor`` (the previous page's
    ``next_cursor``); before, every batch ever committed was read from one full-range log query
    at each block and returned at once."""
    records = snap.index().batches
    after = (-1, -1) if cursor is None else (cursor.block, cursor.log_index)
    page = [r for r in records if r.position > after][: limit + 1]
    more = len(page) > limit
    page = page[:limit]
    out = [
        BatchPublic(
            epoch=r.committed.batch.epoch,
            first_sequence=r.committed.batch.first_sequence,
            last_sequence=r.committed.batch.last_sequence,
            state_root="0x" + r.committed.batch.state_root.hex(),
            signers=r.committed.signers,
            stake_signed_wei=str(r.committed.signed_stake),
            committee_stake_wei=str(r.committed.total_stake),
            tx=r.committed.tx,
            block_number=r.committed.block,
        )
        for r in page
    ]
    last = page[-1] if more else None
    return BatchesPublic(
        block=block_public(snap.head),
        settlement_contract=snap.reader.settlement.address,
        batches=out,
        next_cursor=str(Cursor(*last.position)) if last else None,
        note=None if records else NO_BATCH,
    )
