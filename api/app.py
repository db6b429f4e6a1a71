"""The FastAPI application: routers, error handlers, metrics, the chain poller's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from api.blockheader import BlockHeaderMiddleware
from api.handlers import register_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.routes import (
    attestations,
    batches,
    committee,
    dashboard,
    facilities,
    health,
    latency,
    metrics,
    scores,
    validators,
    venue,
)
from api.service import ChainService
from api.settings import Settings
from redundancy.deployment import Deployment
from redundancy.jsonlog import configure

STATIC = Path(__file__).parent / "static"
#: The settings ``redundancy-api`` validated, as JSON, for its worker processes (``app_from_env``).
SETTINGS_ENV = "REDUNDANCY_API_SETTINGS"
DESCRIPTION = """Read-only views of a dc-redundancy deployment: facilities and their site proofs,
validators, the committee and its redundancy scores, what-if failures, RTT consistency, proof
verification and settlement batches. Every response names the block it reflects (`block`, and
the `X-Block-Number` header); responses are cached per block. Malformed ids answer 422 naming the
field, unknown ids 404, an unreachable chain 503 with `Retry-After`."""


def create_app(settings: Settings) -> FastAPI:
    """The app for one deployment (raises DeploymentFileError if the file is bad)."""
    deployment = Deployment.read(settings.deployment)
    app_metrics = ApiMetrics()
    chain = ChainService(settings, deployment, app_metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(chain.watcher.poll)  # the first head, before the first request
        # Move everything alive now (libraries, ABIs, schemas, clients) out of the collector's
        # sight: full collections scanned it all, 50-60 ms each, several a second under load,
        # and were the whole p99. Later objects (snapshots, responses) are collected as usual.
        gc.freeze()
        poller = asyncio.create_task(chain.watcher.run())
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            chain.close()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the package, not a CDN.
    app = FastAPIOffline(
        title="dc-redundancy API",
        version=version("dc-redundancy"),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.chain = chain
    app.state.metrics = app_metrics
    app.state.settings = settings
    register_handlers(app, settings.retry_after_s)
    for module in (
        facilities,
        validators,
        committee,
        scores,
        attestations,
        latency,
        batches,
        health,
        venue,
        metrics,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.cors_origins:  # off unless origins are configured
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"]
        )
    app.add_middleware(BlockHeaderMiddleware, watcher=chain.watcher)
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    return app


def app_from_env() -> FastAPI:
    """The factory each uvicorn worker process calls (``--workers`` above 1): the settings the
    command validated, from ``SETTINGS_ENV``; a worker starts with no logging, so it sets it up."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure(settings.log_level, settings.log_format)
    return create_app(settings)
