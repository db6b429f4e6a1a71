"""Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from api.deps import MetricsDep

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics",
)
async def metrics(m: MetricsDep) -> Response:
    """Requests by route and status, latency histogram by route, response-cache hits and misses
    by endpoint, chain polls, the latest block and whether the chain is reachable."""
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
