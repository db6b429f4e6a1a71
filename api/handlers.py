"""Exception handlers: the API's errors (and the core's chain errors) as HTTP answers.

Malformed input never reaches these: FastAPI answers 422 naming the field before a view runs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import ChainAnswerError, NotFoundError
from api.schemas.common import ErrorPublic
from redundancy.errors import ChainUnreachableError


def _json(status: int, body: ErrorPublic, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def register_handlers(app: FastAPI, retry_after_s: int) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFoundError)
        return _json(404, ErrorPublic(detail=str(exc), error=f"{exc.what}_not_found"))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChainUnreachableError)
        # the reason only: the RPC endpoint's URL may carry a provider key
        detail = f"the chain is unavailable: {exc.reason}"
        return _json(
            503,
            ErrorPublic(detail=detail, error="chain_unavailable", retry_after_s=retry_after_s),
            {"Retry-After": str(retry_after_s)},
        )

    async def bad_answer(_: Request, exc: Exception) -> JSONResponse:
        return _json(502, ErrorPublic(detail=str(exc), error="chain_error"))

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ChainUnreachableError, unavailable)
    app.add_exception_handler(ChainAnswerError, bad_answer)
