"""The order gateway of one site: HTTP in, group-committed etcd log out, ack after commit.

``POST /orders`` takes one message (the wire format of ``validator.codec``), ``POST
/orders/batch`` a JSON list of them (acknowledged together). The answer carries each message's
log sequence. A retry of an order already acknowledged by this gateway (same account and client
order id) gets the original sequence with ``"duplicate": true`` and is not logged again; a retry
through another gateway is logged and the engine rejects it (``duplicate_order_id``), so it never
trades twice. When etcd cannot commit (members down, no quorum) the answer is 503 and nothing is
acknowledged.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from validator.codec import decode_message, encode_message
from validator.errors import EtcdError, MessageError
from validator.messages import CancelReplace, Message, NewOrder
from validator.sequencer import Sequencer

UNAVAILABLE = (
    "log unavailable: etcd did not commit ({reason}); NOT acknowledged. "
    "Retrying with the same client order id is safe."
)


def _dedup_key(msg: Message) -> tuple[str, int] | None:
    if isinstance(msg, NewOrder):
        return (msg.account, msg.order_id)
    if isinstance(msg, CancelReplace):
        return (msg.account, msg.new_order_id)
    return None


class Gateway:
    def __init__(self, sequencer: Sequencer, site: str) -> None:
        self.sequencer = sequencer
        self.site = site
        self.acked: dict[tuple[str, int], tuple[int, bytes]] = {}
        """(account, client order id) -> (sequence, canonical line) of acknowledged orders."""
        self.acknowledged = 0

    async def accept(self, raw: list[Any]) -> list[dict[str, Any]]:
        """Log the messages (or recognise retries); raises MessageError, EtcdUnavailableError."""
        msgs = [decode_message(json.dumps(item)) for item in raw]
        acks: list[dict[str, Any]] = [{} for _ in msgs]
        fresh: list[tuple[int, Message, bytes]] = []
        for i, msg in enumerate(msgs):
            line = encode_message(msg)
            key = _dedup_key(msg)
            seen = self.acked.get(key) if key is not None else None
            if seen is not None and seen[1] == line:  # a retry: same order, same content
                acks[i] = {"seq": seen[0], "duplicate": True}
            else:  # new, or a reused id with other content (the engine rejects that)
                fresh.append((i, msg, line))
        if fresh:
            first = await self.sequencer.submit([line for _, _, line in fresh])
            for offset, (i, msg, line) in enumerate(fresh):
                acks[i] = {"seq": first + offset, "duplicate": False}
                key = _dedup_key(msg)
                if key is not None and key not in self.acked:
                    self.acked[key] = (first + offset, line)
            self.acknowledged += len(fresh)
        return acks


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title=f"validator gateway {gateway.site}")

    async def handle(request: Request, batch: bool) -> Response:
        try:
            body = json.loads(await request.body())
            items = body if batch else [body]
            if not isinstance(items, list) or not items:
                raise MessageError("expected a non-empty JSON list" if batch else "empty")
            acks = await gateway.accept(items)
        except (MessageError, ValueError) as exc:
            return JSONResponse({"error": f"bad input: {exc}"}, status_code=400)
        except EtcdError as exc:
            return JSONResponse({"error": UNAVAILABLE.format(reason=exc)}, status_code=503)
        return JSONResponse({"acks": acks} if batch else acks[0])

    @app.post("/orders")
    async def order(request: Request) -> Response:
        return await handle(request, batch=False)

    @app.post("/orders/batch")
    async def batch(request: Request) -> Response:
        return await handle(request, batch=True)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "site": gateway.site,
            "acknowledged": gateway.acknowledged,
            "chunks_written": gateway.sequencer.chunks_written,
            "index_conflicts": gateway.sequencer.conflicts,
            "etcd": gateway.sequencer.etcd.endpoint,
        }

    return app
