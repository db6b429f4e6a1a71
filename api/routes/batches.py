"""Settlement batches committed by the validator nodes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from api.deps import ChainDep
from api.fields import DECIMAL, CursorDep
from api.schemas.batches import BatchesPublic
from api.schemas.common import ERROR_RESPONSES
from api.views import batches as views

router = APIRouter(prefix="/batches", tags=["batches"], responses=ERROR_RESPONSES)


@router.get("", response_model=BatchesPublic, summary="Settlement batches, oldest first")
async def list_batches(
    chain: ChainDep,
    cursor: CursorDep,
    limit: Annotated[int, Query(ge=1, le=500, description="page size"), DECIMAL] = 100,
) -> Response:
    """Each batch: epoch, input-log range, state root, signers and the stake that signed, as the
    settlement ledger accepted them (with a note while there is none). Page with ``cursor``
    (``next_cursor`` of the previous page: the position of its last batch)."""
    return await chain.respond(
        "batches", (cursor, limit), lambda snap: views.batches(snap, cursor, limit)
    )
