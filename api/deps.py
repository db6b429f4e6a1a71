"""Typed dependencies the routes declare."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from api.metrics import ApiMetrics
from api.service import ChainService


def get_chain(request: Request) -> ChainService:
    return cast(ChainService, request.app.state.chain)


def get_metrics(request: Request) -> ApiMetrics:
    return cast(ApiMetrics, request.app.state.metrics)


ChainDep = Annotated[ChainService, Depends(get_chain)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
