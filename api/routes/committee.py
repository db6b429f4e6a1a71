"""The committee of the current epoch."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.schemas.committee import CommitteePublic
from api.schemas.common import ERROR_RESPONSES
from api.views import committee as views

router = APIRouter(prefix="/committee", tags=["committee"], responses=ERROR_RESPONSES)


@router.get("", response_model=CommitteePublic, summary="Current epoch, members, stake, domains")
async def get_committee(chain: ChainDep) -> Response:
    """Members with stake and domain per dimension, and the committee's stake by domain in each
    dimension (what the dashboard's bars draw)."""
    return await chain.respond("committee", (), views.committee)
