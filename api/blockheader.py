"""Every response names the block it reflects: ``X-Block-Number`` on every HTTP answer.

Views put the block their answer was computed at; this pure ASGI middleware adds the latest
block the chain watcher has seen to every other answer (health, metrics, 404s, 422s, static
files), so a client can always tell how current a response is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.chainwatch import ChainWatcher

HEADER = b"x-block-number"


class BlockHeaderMiddleware:
    def __init__(self, app: ASGIApp, watcher: ChainWatcher) -> None:
        self.app = app
        self.watcher = watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_block(message: Message) -> None:
            if message["type"] == "http.response.start":
                head = self.watcher.last_head
                headers = message.get("headers", [])
                if head is not None and not any(k.lower() == HEADER for k, _ in headers):
                    message["headers"] = [*headers, (HEADER, str(head.number).encode())]
            await send(message)

        await self.app(scope, receive, send_with_block)
