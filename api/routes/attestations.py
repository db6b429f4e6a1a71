"""Site proofs, as published on chain, and their independent verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from api.deps import ChainDep
from api.fields import (
    DECIMAL,
    CursorDep,
    FacilityFilterDep,
    IndexPath,
    KindFilterDep,
    TxPath,
)
from api.schemas.attestations import AttestationPublic, AttestationsPublic, VerificationPublic
from api.schemas.common import ERROR_RESPONSES, NOT_FOUND
from api.views import attestations as views

router = APIRouter(prefix="/attestations", tags=["attestations"], responses=ERROR_RESPONSES)

MAX_BLOCK = 2**63 - 1


@router.get("", response_model=AttestationsPublic, summary="Accepted proofs, oldest first")
async def list_attestations(
    chain: ChainDep,
    facility: FacilityFilterDep,
    kind: KindFilterDep,
    cursor: CursorDep,
    from_block: Annotated[
        int | None, Query(ge=0, le=MAX_BLOCK, description="first block (inclusive)"), DECIMAL
    ] = None,
    to_block: Annotated[
        int | None, Query(ge=0, le=MAX_BLOCK, description="last block (inclusive)"), DECIMAL
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="page size"), DECIMAL] = 100,
) -> Response:
    """Filter by facility, kind and block range; page with ``cursor`` (``next_cursor`` of the
    previous page: the position of its last item, so pages stay stable as blocks arrive)."""
    if from_block is not None and to_block is not None and to_block < from_block:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "to_block"),
                    "msg": f"to_block {to_block} is before from_block {from_block}",
                    "input": to_block,
                }
            ]
        )
    q = views.AttestationQuery(facility, kind, from_block, to_block, cursor, limit)
    key = (facility.id if facility else None, kind, from_block, to_block, cursor, limit)
    return await chain.respond("attestations", key, lambda snap: views.list_attestations(snap, q))


@router.get(
    "/{tx}/{index}",
    response_model=AttestationPublic,
    responses=NOT_FOUND,
    summary="One proof of a submission, decoded from calldata",
)
async def get_attestation(chain: ChainDep, tx: TxPath, index: IndexPath) -> Response:
    tx = tx.lower()
    return await chain.respond(
        "attestation", (tx, index), lambda snap: views.get_attestation(snap, tx, index)
    )


@router.get(
    "/{tx}/{index}/verify",
    response_model=VerificationPublic,
    responses=NOT_FOUND,
    summary="Every check of redundancy-verify-attestation, for one proof",
)
async def verify_attestation(chain: ChainDep, tx: TxPath, index: IndexPath) -> Response:
    """The same checks and output as ``redundancy-verify-attestation --tx TX --json`` (its
    ``proofs[index]``): signature, attestor, sequence, expiry, skew, evidence hash, device
    certificate chain and device signature. ``ok`` is false if any check failed."""
    tx = tx.lower()
    return await chain.respond(
        "verify", (tx, index), lambda snap: views.verify_attestation(snap, tx, index)
    )
