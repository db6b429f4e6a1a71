"""Settlement batches committed by the validator nodes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.schemas.batches import BatchesPublic
from api.schemas.common import ERROR_RESPONSES
from api.views import batches as views

router = APIRouter(prefix="/batches", tags=["batches"], responses=ERROR_RESPONSES)


@router.get("", response_model=BatchesPublic, summary="Settlement batches")
async def list_batches(chain: ChainDep) -> Response:
    """Each batch: epoch, input-log range, state root, signers and the stake that signed, as the
    settlement ledger accepted them (with a note while there is none)."""
    return await chain.respond("batches", (), views.batches)
