"""Health: whether the chain answers, the latest block, the deployment served."""

from __future__ import annotations

import time
from importlib.metadata import version

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ChainDep
from api.schemas.health import DeploymentPublic, HealthPublic
from api.views.common import block_public

router = APIRouter(tags=["health"])
VERSION = version("dc-redundancy")


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "the chain is unavailable"}},
    summary="Chain reachable, latest block, deployment addresses",
)
async def health(chain: ChainDep) -> JSONResponse:
    """200 while the last poll of the chain succeeded, else 503 with the reason. Never calls the
    chain itself: it reports the background poller's view (polled every few hundred ms)."""
    watcher = chain.watcher
    head = watcher.last_head
    error = watcher.error
    d = chain.deployment
    body = HealthPublic(
        status="ok" if error is None else "unavailable",
        chain_reachable=error is None,
        reason=error,
        block=block_public(head) if head else None,
        block_age_s=int(time.time()) - head.timestamp if head else None,
        last_poll_ms=int(watcher.poll_age() * 1000) if head or error else None,
        deployment=DeploymentPublic(
            chain_id=d.chain_id,
            registry=d.registry,
            selector=d.selector,
            settlement=d.settlement,
            deploy_block=d.deploy_block,
        ),
        version=VERSION,
    )
    if error is None:
        return JSONResponse(body.model_dump())
    retry = str(chain.retry_after_s)
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": retry})
