"""Validators: stake, facility, node hardware, eligibility."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.fields import AddressPathDep
from api.schemas.common import ERROR_RESPONSES, NOT_FOUND
from api.schemas.validators import ValidatorDetailPublic, ValidatorsPublic
from api.views import validators as views

router = APIRouter(prefix="/validators", tags=["validators"], responses=ERROR_RESPONSES)


@router.get("", response_model=ValidatorsPublic, summary="Every registered validator")
async def list_validators(chain: ChainDep) -> Response:
    return await chain.respond("validators", (), views.list_validators)


@router.get(
    "/{address}", response_model=ValidatorDetailPublic, responses=NOT_FOUND, summary="One validator"
)
async def get_validator(chain: ChainDep, address: AddressPathDep) -> Response:
    return await chain.respond(
        "validator", address, lambda snap: views.get_validator(snap, address)
    )
