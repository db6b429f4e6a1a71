"""A small asynchronous etcd v3 client over etcd's JSON gateway (HTTP), with endpoint failover.

Only what the input log needs: put, range, a create-if-absent transaction, delete, compaction,
member status and a streaming watch. Keys and values travel base64-encoded, as the gateway wants.
Every request has a deadline: on a cluster without quorum a write never answers, so the caller
learns ``EtcdUnavailableError`` after ``timeout`` seconds instead of waiting for ever.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from validator.errors import EtcdError, EtcdUnavailableError


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(unb64(raw["key"]), unb64(raw.get("value", "")), int(raw["mod_revision"]))


class EtcdClient:
    """Talks to the first endpoint that answers; moves to the next one when it does not."""

    def __init__(self, endpoints: Sequence[str], timeout: float = 1.5) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self._current = 0
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 0.5)))

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._current]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``, trying each endpoint once, current one first."""
        last: Exception | None = None
        for attempt in range(len(self.endpoints)):
            index = (self._current + attempt) % len(self.endpoints)
            try:
                response = await self._http.post(f"{self.endpoints[index]}/v3/{path}", json=body)
            except httpx.TimeoutException as exc:
                # The member answered nothing in time: without quorum every member behaves so.
                raise EtcdUnavailableError(f"{path}: no answer within {self.timeout}s") from exc
            except httpx.TransportError as exc:
                last = exc
                continue
            self._current = index
            data: dict[str, Any] = response.json()
            if response.status_code != 200 or "error" in data:
                message = str(data.get("error") or data.get("message") or response.text)
                if "timed out" in message or "no leader" in message or "unhealthy" in message:
                    raise EtcdUnavailableError(f"{path}: {message}")
                raise EtcdError(f"{path}: {message}")
            return data
        raise EtcdUnavailableError(f"{path}: no etcd endpoint reachable ({last})")

    async def put(self, key: bytes, value: bytes) -> int:
        data = await self.call("kv/put", {"key": b64(key), "value": b64(value)})
        return int(data["header"]["revision"])

    async def get_range(
        self, start: bytes, end: bytes, limit: int = 0, serializable: bool = False
    ) -> tuple[list[KeyValue], int, bool]:
        """Keys in ``[start, end)`` in key order: (kvs, header revision, more)."""
        body: dict[str, Any] = {"key": b64(start), "range_end": b64(end), "limit": limit}
        if serializable:
            body["serializable"] = True
        data = await self.call("kv/range", body)
        kvs = [_kv(raw) for raw in data.get("kvs", [])]
        return kvs, int(data["header"]["revision"]), bool(data.get("more", False))

    async def get(self, key: bytes) -> KeyValue | None:
        data = await self.call("kv/range", {"key": b64(key)})
        kvs = data.get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    async def last_key(self, start: bytes, end: bytes) -> KeyValue | None:
        """The greatest key in ``[start, end)``."""
        body = {
            "key": b64(start),
            "range_end": b64(end),
            "limit": 1,
            "sort_order": "DESCEND",
            "sort_target": "KEY",
        }
        kvs = (await self.call("kv/range", body)).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    async def create(self, key: bytes, value: bytes) -> int | None:
        """Write ``key`` only if it does not exist: its revision, or None if it already did."""
        body = {
            "compare": [
                {"key": b64(key), "target": "CREATE", "create_revision": "0", "result": "EQUAL"}
            ],
            "success": [{"request_put": {"key": b64(key), "value": b64(value)}}],
        }
        data = await self.call("kv/txn", body)
        return int(data["header"]["revision"]) if data.get("succeeded") else None

    async def delete_range(self, start: bytes, end: bytes) -> int:
        data = await self.call("kv/deleterange", {"key": b64(start), "range_end": b64(end)})
        return int(data.get("deleted", 0))

    async def compact(self, revision: int) -> None:
        try:
            await self.call("kv/compaction", {"revision": revision})
        except EtcdError as exc:
            if "compacted" not in str(exc):
                raise

    async def status(self) -> dict[str, Any]:
        return await self.call("maintenance/status", {})

    async def watch(self, start: bytes, end: bytes, revision: int) -> AsyncIterator[KeyValue]:
        """Every put to ``[start, end)`` from ``revision`` on, as it happens (no deletes).

        Ends (raising ``EtcdUnavailableError``) when the stream breaks; the caller resumes
        from the revision after the last event it saw.
        """
        body = {
            "create_request": {
                "key": b64(start),
                "range_end": b64(end),
                "start_revision": revision,
                "filters": ["NODELETE"],
            }
        }
        timeout = httpx.Timeout(None, connect=0.5)
        try:
            async with self._http.stream(
                "POST", f"{self.endpoint}/v3/watch", json=body, timeout=timeout
            ) as response:
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    if result.get("compact_revision") not in (None, "0"):
                        raise EtcdError(f"watch: revision {revision} compacted")
                    for event in result.get("events", []):
                        yield _kv(event["kv"])
        except httpx.TransportError as exc:
            self._current = (self._current + 1) % len(self.endpoints)
            raise EtcdUnavailableError(f"watch on {self.endpoint}: {exc}") from exc
        self._current = (self._current + 1) % len(self.endpoints)
        raise EtcdUnavailableError("watch stream ended")
