"""Redundancy scores, and what happens if domains fail."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.fields import FailedDomainsDep
from api.schemas.common import ERROR_RESPONSES
from api.schemas.scores import ScoresPublic, WhatIfPublic
from api.views import scores as views

router = APIRouter(prefix="/scores", tags=["scores"], responses=ERROR_RESPONSES)


@router.get("", response_model=ScoresPublic, summary="Scores of the current committee")
async def get_scores(chain: ChainDep) -> Response:
    """Per dimension: Nakamoto coefficient, tolerance, HHI, the largest domain and its share; the
    overall score (least tolerance), the weakest dimension and the configuration class, as the
    CommitteeSelector computes them."""
    return await chain.respond("scores", (), views.scores)


@router.get("/what-if", response_model=WhatIfPublic, summary="Score and liveness if domains fail")
async def get_what_if(chain: ChainDep, fail: FailedDomainsDep) -> Response:
    """Whether the current committee stays live if every member in the given domains goes
    offline, and how many further whole domains each dimension could then lose."""
    key = tuple(sorted(set(fail)))
    return await chain.respond("what-if", key, lambda snap: views.scores_what_if(snap, fail))
