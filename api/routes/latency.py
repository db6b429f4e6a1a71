"""Measured RTTs between facilities against their claimed distance."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ChainDep
from api.schemas.common import ERROR_RESPONSES
from api.schemas.latency import LatencyLinksPublic
from api.views import latency as views

router = APIRouter(prefix="/latency", tags=["geography"], responses=ERROR_RESPONSES)


@router.get("", response_model=LatencyLinksPublic, summary="RTT links between facilities")
async def list_links(chain: ChainDep) -> Response:
    """Every measured pair: each end's newest accepted report (LatencyReported), the pair's
    two-sided RTT (the larger of both ends' fresh reports), and whether it is consistent with
    the distance between their positions: ``distance_lower_bound_m <= rtt_distance_bound_m +
    tolerance_m``."""
    return await chain.respond("latency", (), views.latency_links)
