"""GET /batches: none until a settlement contract is deployed (no batch is ever invented)."""

from __future__ import annotations

from api.schemas.batches import BatchesPublic
from api.snapshot import Snapshot
from api.views.common import block_public

NO_LEDGER = (
    "this deployment has no settlement contract yet: batches appear here once validator nodes "
    "commit them to one"
)


def batches(snap: Snapshot) -> BatchesPublic:
    return BatchesPublic(
        block=block_public(snap.head),
        settlement_contract=None,
        batches=[],
        next_cursor=None,
        note=NO_LEDGER,
    )
