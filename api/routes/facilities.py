"""Facilities: where the venue's validators physically run, and how fresh their proofs are."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.fields import FacilityPathDep
from api.schemas.common import ERROR_RESPONSES, NOT_FOUND
from api.schemas.facilities import FacilitiesPublic, FacilityDetailPublic
from api.views import facilities as views

router = APIRouter(prefix="/facilities", tags=["facilities"], responses=ERROR_RESPONSES)


@router.get("", response_model=FacilitiesPublic, summary="Every registered facility")
async def list_facilities(chain: ChainDep) -> Response:
    """Domains per dimension, the latest proof of every kind with its freshness, why a facility
    is stale, geography flags and the disc RTTs to landmarks prove it lies in."""
    return await chain.respond("facilities", (), views.list_facilities)


@router.get(
    "/{facility}",
    response_model=FacilityDetailPublic,
    responses=NOT_FOUND,
    summary="One facility, by id or name",
)
async def get_facility(chain: ChainDep, facility: FacilityPathDep) -> Response:
    return await chain.respond(
        "facility", facility.id, lambda snap: views.get_facility(snap, facility)
    )
