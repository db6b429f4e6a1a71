"""Answers a request from the per-block cache, computing it (once) in a worker thread on a miss,
and turns the chain's failures into the API's errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from starlette.responses import Response
from web3.exceptions import Web3Exception

from api.blockview import BlockView
from api.cache import BlockCache, Cached
from api.chainwatch import ChainWatcher
from api.errors import ApiError, ChainAnswerError, NotFoundError
from api.metrics import ApiMetrics
from api.reader import ChainReader, Head
from api.settings import Settings
from redundancy.chain import one_line
from redundancy.deployment import Deployment
from redundancy.errors import ChainError, ChainUnreachableError, ContractRevertError

VIEWS_KEPT = 4
JSON = "application/json"


class ChainService:
    def __init__(self, settings: Settings, deployment: Deployment, metrics: ApiMetrics) -> None:
        self.deployment = deployment
        self.metrics = metrics
        self.retry_after_s = settings.retry_after_s
        self.watcher = ChainWatcher(
            settings.rpc_url,
            deployment,
            metrics,
            interval=settings.block_poll_ms / 1000,
            rpc_timeout=settings.rpc_timeout_s,
        )
        self.cache = BlockCache(settings.cache_entries, settings.cache_bytes)
        self._views: dict[str, BlockView] = {}
        self._lock = threading.Lock()

    def view(self, reader: ChainReader, head: Head) -> BlockView:
        with self._lock:
            view = self._views.get(head.hash)
            if view is None:
                view = self._views[head.hash] = BlockView(reader, head)
                while len(self._views) > VIEWS_KEPT:
                    del self._views[next(iter(self._views))]
            return view

    async def respond(
        self, endpoint: str, params: Hashable, build: Callable[[BlockView], BaseModel]
    ) -> Response:
        """The JSON of ``build`` at the latest block, from the cache when it holds it."""
        head = self.watcher.head
        reader = self.watcher.reader
        entry, hit = await self.cache.get(
            head.hash, (endpoint, params), lambda: self._compute(reader, head, build)
        )
        self.metrics.cache_lookup(endpoint, hit)
        if entry.error is not None:  # a cached "not found": the same answer for this block
            raise entry.error.with_traceback(None)
        assert entry.body is not None
        return Response(entry.body, media_type=JSON, headers={"X-Block-Number": str(head.number)})

    def _compute(
        self, reader: ChainReader, head: Head, build: Callable[[BlockView], BaseModel]
    ) -> Cached:
        try:
            model = build(self.view(reader, head))
        except NotFoundError as exc:
            return Cached(None, exc)
        except (ApiError, ChainUnreachableError):  # before OSError: it is a ConnectionError
            raise
        except ContractRevertError as exc:
            raise ChainAnswerError(f"a contract view reverted: {exc}") from None
        except ChainError as exc:
            raise ChainUnreachableError(self.watcher.rpc_url, str(exc)) from None
        except (Web3Exception, OSError) as exc:  # node errors, timeouts, refused connections
            raise ChainUnreachableError(self.watcher.rpc_url, one_line(exc)) from None
        return Cached(json_body(model))

    def close(self) -> None:
        self.watcher.close()


def json_body(model: BaseModel) -> bytes:
    """The model as a JSON body; a lone surrogate (chain content may hold one) is escaped
    (``\\ud800``) rather than failing the response, since UTF-8 cannot encode it."""
    try:
        return model.model_dump_json().encode()
    except PydanticSerializationError:
        return json.dumps(
            model.model_dump(mode="json"), ensure_ascii=True, separators=(",", ":")
        ).encode()
