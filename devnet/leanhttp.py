"""A lean asyncio HTTP/1.1 client for the latency probes and the load generators.

What a load generator on the venue's own machine should cost is as little as it can: every
core it uses is taken from the processes being measured. aiohttp used 0.42 of a core to send
2,000 single orders/s to the gateways here (about 0.2 ms of CPU per request); this client uses
0.13, and the venue's ack p50 at that rate fell from 57-119 ms to 25-27 ms (at 50 orders/s,
where the machine is idle, the two measure the same). It does only what the gateway's answers
need:

- keep-alive connections to one server, pooled; one request in flight on each (a request finds
  an idle connection or opens one), ``TCP_NODELAY`` on;
- a request is written in one ``write``; the answer is read up to its ``Content-Length`` (the
  gateway and uvicorn always send one; a chunked answer is refused with a named error);
- a connection the server has closed (seen as end of stream) is not reused, nor one idle for
  longer than ``idle_limit`` (below the server's keep-alive timeout, uvicorn's default is 5 s:
  the server may be closing it as the request leaves), nor one whose answer said
  ``Connection: close``.

Every failure (refused, reset, timed out, a malformed answer) raises ``OSError`` or
``TimeoutError``; the connection it happened on is dropped.
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

__all__ = ["LeanClient"]


class LeanClient:
    """``await client.post(path, body)`` -> (status, body) over pooled keep-alive connections
    to the server of ``base_url`` (``http://host:port``)."""

    def __init__(self, base_url: str, timeout: float = 10.0, idle_limit: float = 2.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"{base_url!r}: an http://host:port URL is needed")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.idle_limit = idle_limit
        self._idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._head = f"Host: {self.host}:{self.port}\r\n".encode()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            since, reader, writer = self._idle.pop()
            if now - since < self.idle_limit and not reader.at_eof():
                return reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``: the answer's status and body."""
        return await self.request("POST", path, body)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path, None)

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        async with asyncio.timeout(self.timeout):
            reader, writer = await self._connection()
            try:
                status, answer, keep = await self._exchange(reader, writer, method, path, body)
            except BaseException:
                writer.close()
                raise
        if keep:
            self._idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()
        return status, answer

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        body: bytes | None,
    ) -> tuple[int, bytes, bool]:
        request = b"%s %s HTTP/1.1\r\n%s" % (method.encode(), path.encode(), self._head)
        if body is not None:
            request += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
        else:
            request += b"\r\n"
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("the server closed the connection before answering") from exc
        lines = head.split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if (
            len(status_line) < 2
            or not status_line[0].startswith(b"HTTP/1.")
            or not status_line[1].isdigit()
        ):
            raise ConnectionError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        length = -1
        keep = lines[0].startswith(b"HTTP/1.1")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
                raise ConnectionError(
                    f"answer with Transfer-Encoding {value.strip()!r} (not supported)"
                )
            elif name == b"connection":
                keep = value.strip().lower() != b"close"
        if length < 0:
            raise ConnectionError("answer without Content-Length")
        try:
            answer = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("the server closed the connection mid-answer") from exc
        return int(status_line[1]), answer, keep

    async def close(self) -> None:
        for _, _, writer in self._idle:
            writer.close()
        self._idle.clear()
