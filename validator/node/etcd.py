"""A small asynchronous etcd v3 client with endpoint failover: gRPC on the order path, etcd's JSON
gateway (HTTP) for the rest.

Only what the input log needs: put, range, create-if-absent, deletes, compaction and a
streaming watch. The two calls every order crosses, the gateway's hedged create-if-absent
transaction and the nodes' watch, speak gRPC by default (``transport="grpc"``; messages in
``validator.node.etcdwire``): through the JSON gateway etcd base64-encodes each chunk into JSON
and transcodes it over an internal connection, which cost it 2.7 times the CPU per chunk and
0.6 ms per transaction. Everything else (reads, deletes, membership, status) is rare and goes
through the JSON gateway, keys and values base64-encoded as it wants. Every attempt
has a deadline: a paused or cut-off member, or a cluster without quorum, never answers a write,
so a request that one member does not answer in time goes to the next one, and the caller
learns ``EtcdUnavailableError`` once every member has had its chance, instead of waiting for
ever.

aiohttp rather than httpx for the JSON gateway: on loopback a transaction round trip is about
0.9 ms against 1.5 ms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import aiohttp

# isort: off
from validator.node import grpc_setup  # noqa: F401  (gRPC's I/O, chosen before it is imported)
import grpc

# isort: on

from validator.node import etcdwire
from validator.node.errors import EtcdError, EtcdUnavailableError
from validator.node.etcdwire import KeyValue as KeyValue

Transport = Literal["grpc", "json"]
_T = TypeVar("_T")
_R = TypeVar("_R")

_UNAVAILABLE = (
    "timed out",
    "no leader",
    "unhealthy",
    "leader changed",
    "too many requests",
    "proposal dropped",  # a follower that has lost its leader drops proposals (an election)
    "server stopped",
    "raft: stopped",  # a member removed from the cluster, still running for a moment
    "stopping",
    "transport is closing",
    "deadline exceeded",
    "context canceled",
)
"""Error texts of a member that cannot commit right now (as opposed to a refused request): the
same request goes to the next member."""
_JSON = {"content-type": "application/json"}
_GRPC_OPTIONS = [
    ("grpc.enable_http_proxy", 0),  # loopback and the sites' own addresses only, never a proxy
    ("grpc.max_receive_message_length", -1),  # a watch answer may carry many large chunks
    ("grpc.max_send_message_length", -1),  # etcd's own --max-request-bytes is the limit
    # a member that was killed is dialled again within 0.1-0.5 s of coming back, not after
    # gRPC's default backoff of up to two minutes ...
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    # ... and one connection attempt may take 5 s: gRPC core also uses this minimum as the
    # deadline of each attempt, and 0.1 s would never reach a member a transatlantic round trip
    # (and a TLS handshake) away
    ("grpc.min_reconnect_backoff_ms", 5_000),
    # a watch on a member that went silent (cut off without a reset, or frozen) fails within
    # 15 s and moves on: a ping every 10 s while a call is open (etcd refuses pings more often
    # than every 5 s), answered within 5 s, and pings allowed on a watch that carries no events
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
]
_REQUIRE_LEADER = (("hasleader", "true"),)
"""Watch metadata: etcd cancels the watch when its member has lost the leader (a member cut
off from its peers has nothing new to send), so the node moves to a member that has one."""
_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
}
"""gRPC statuses that mean etcd judged the request itself (no other member would answer
otherwise): only these are refusals; any other failure of a sent request may have reached it."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _tls_roots() -> bytes | None:
    """The CA certificates Python's default TLS context trusts, as one PEM bundle, so both
    transports trust the same roots: those of ``SSL_CERT_FILE`` (or the system's bundle) and
    every certificate in ``SSL_CERT_DIR`` (or the system's directory), both, as OpenSSL reads
    them, each certificate once; None when there are none (gRPC's own then)."""
    paths = ssl.get_default_verify_paths()
    texts: list[bytes] = []
    if paths.cafile and Path(paths.cafile).is_file():
        texts.append(Path(paths.cafile).read_bytes())
    if paths.capath and Path(paths.capath).is_dir():
        texts += [f.read_bytes() for f in sorted(Path(paths.capath).iterdir()) if f.is_file()]
    certificates = dict.fromkeys(_PEM.findall(b"\n".join(texts)))
    return b"\n".join(certificates) + b"\n" if certificates else None


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(unb64(raw["key"]), unb64(raw.get("value", "")), int(raw["mod_revision"]))


class EtcdClient:
    """Talks to the first endpoint (this site's own member) while it answers; moves to the next
    one when it does not, and back home once home serves a linearizable read again.

    A member that does not answer in time (paused, partitioned, overloaded) is treated like one
    that refuses connections: the same request goes to the next endpoint within the same call.
    Every request the log makes is safe to repeat on another member (create-if-absent
    transactions, puts of the same value, reads, deletes), so this never writes twice.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        timeout: float = 1.5,
        home_probe_every: float = 0.5,
        transport: Transport = "grpc",
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        if transport not in ("grpc", "json"):
            raise ValueError(f"transport must be grpc or json, not {transport!r}")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.transport: Transport = transport
        """How the order path's transaction and watch travel (the rest always uses JSON)."""
        self._roots = _tls_roots() if any(e.startswith("https:") for e in endpoints) else None
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.home_probe_every = home_probe_every
        self._current = 0
        self._session: aiohttp.ClientSession | None = None
        self._next_home_probe = 0.0
        self._probe: asyncio.Task[None] | None = None
        self.failovers = 0
        """How many times a request moved on to another endpoint (for /health)."""

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._current]

    @property
    def session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the event loop that uses it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=0.5),
                connector=aiohttp.TCPConnector(limit=64, force_close=False),
            )
        return self._session

    def _channel(self, index: int) -> grpc.aio.Channel:
        """The gRPC channel to endpoint ``index`` (one HTTP/2 connection, made on first use
        inside the event loop that uses it)."""
        endpoint = self.endpoints[index]
        channel = self._channels.get(endpoint)
        if channel is None:
            url = urlsplit(endpoint)
            if url.scheme == "https":  # TLS, trusting what the JSON gateway's requests trust
                if self._roots is None:  # an https member learnt after start-up
                    self._roots = _tls_roots()
                credentials = grpc.ssl_channel_credentials(self._roots)
                channel = grpc.aio.secure_channel(url.netloc, credentials, options=_GRPC_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(url.netloc, options=_GRPC_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._session is not None:
            await self._session.close()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _post(self, index: int, path: str, payload: str, limit: float) -> tuple[int, bytes]:
        deadline = aiohttp.ClientTimeout(total=limit, sock_connect=min(limit, 0.5))
        async with self.session.post(
            f"{self.endpoints[index]}/v3/{path}", data=payload, headers=_JSON, timeout=deadline
        ) as response:
            return response.status, await response.read()

    def _maybe_probe_home(self) -> None:
        """While away from home, check every ``home_probe_every`` seconds (in the background)
        whether home serves a linearizable read again: that needs a leader with a quorum, so a
        member that is merely up but cut off from the others does not count."""
        if self._current == 0 or (self._probe is not None and not self._probe.done()):
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_home_probe:
            return
        self._next_home_probe = loop.time() + self.home_probe_every
        self._probe = loop.create_task(self._probe_home())

    async def _probe_home(self) -> None:
        body = json.dumps({"key": b64(b"/venue/probe"), "limit": 1})
        try:
            status, text = await self._post(0, "kv/range", body, min(self.timeout, 0.5))
        except (TimeoutError, aiohttp.ClientError, OSError):
            return  # still away: the next probe tries again
        if status == 200 and b'"error"' not in text:
            self._current = 0

    def _judge(
        self, index: int, path: str, attempt: asyncio.Task[tuple[int, bytes]], limit: float
    ) -> tuple[dict[str, Any] | None, str, bool]:
        """What one finished attempt says: (answer, "", False) when the member answered, else
        (None, why, whether the request may have reached it). Raises ``EtcdError`` when the
        member refused the request itself (an answer no other member would change)."""
        endpoint = self.endpoints[index]
        try:
            status, text = attempt.result()
        except asyncio.CancelledError:  # the call was cancelled here after it may have left
            return None, f"{endpoint}: call cancelled", True
        except TimeoutError:  # paused, partitioned or without quorum: it may sit in that member
            return None, f"{endpoint}: no answer within {limit:.3g}s", True
        except aiohttp.ClientConnectorError as exc:  # refused: nothing was sent
            return None, f"{endpoint}: {exc.strerror or exc}", False
        except aiohttp.ClientError as exc:  # reset mid-request: it may have been received
            return None, f"{endpoint}: {exc!r}", True
        try:
            data: dict[str, Any] = json.loads(text)
        except ValueError:
            raise EtcdError(f"{path}: HTTP {status}, not JSON: {text[:80]!r}") from None
        if status != 200 or "error" in data:
            message = str(data.get("error") or data.get("message") or text[:200])
            if any(s in message for s in _UNAVAILABLE):
                return None, f"{endpoint}: {message}", True
            raise EtcdError(f"{path}: {message}")
        if index != self._current:
            self.failovers += 1
            self._current = index
        return data, "", False

    async def call(
        self, path: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``, trying each endpoint once, current one first, until
        one answers; ``timeout`` (default: the client's) bounds each attempt.

        A member that times out, refuses the connection or says it cannot commit right now (no
        leader, timed out) is skipped for the next one. When none answers, raises
        ``EtcdUnavailableError`` whose ``maybe_applied`` says whether any attempt could have
        reached a member (so a write might still take effect) or none did.
        """
        self._maybe_probe_home()
        payload = json.dumps(body)
        limit = self.timeout if timeout is None else timeout
        failures: list[str] = []
        maybe_applied = False
        count = len(self.endpoints)
        for attempt in range(count):
            index = (self._current + attempt) % count
            task = asyncio.ensure_future(self._post(index, path, payload, limit))
            await asyncio.wait([task])
            data, why, reached = self._judge(index, path, task, limit)
            if data is not None:
                return data
            failures.append(why)
            maybe_applied = maybe_applied or reached
        raise EtcdUnavailableError(
            f"{path}: no etcd member answered ({'; '.join(failures)})", maybe_applied
        )

    async def learn_members(self) -> list[str]:
        """Append the client URL of every voting member the cluster lists that this client does
        not know yet (one the venue added since start-up, say a standby site taken into the
        committee); returns the URLs added. Known endpoints are never removed or reordered, so
        the indices of requests in flight stay valid; a removed member's URL stays and refuses
        connections (its etcd exits once removed). Learners are skipped: they serve no client
        requests until promoted."""
        data = await self.call("cluster/member/list", {})
        added: list[str] = []
        for member in data.get("members", []):
            urls = [str(u).rstrip("/") for u in member.get("clientURLs", [])]
            if member.get("isLearner") or not urls or any(u in self.endpoints for u in urls):
                continue
            self.endpoints.append(urls[0])
            added.append(urls[0])
        return added

    async def member_status(self, index: int, timeout: float = 0.5) -> dict[str, Any] | None:
        """``maintenance/status`` of one member (its id in ``header.member_id``, the leader it
        knows in ``leader``), or None when it does not answer in ``timeout``."""
        try:
            status, text = await self._post(index, "maintenance/status", "{}", timeout)
            data: dict[str, Any] = json.loads(text)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None
        return data if status == 200 and "header" in data else None

    async def transfer_leadership(self, index: int, target_id: str, timeout: float = 3.0) -> None:
        """Ask member ``index`` (it must be the leader) to hand leadership to member
        ``target_id`` (etcd's move-leader); raises EtcdError when it refuses, OSError /
        TimeoutError when it does not answer."""
        body = json.dumps({"targetID": target_id})
        status, text = await self._post(index, "maintenance/transfer-leadership", body, timeout)
        if status != 200 or b'"error"' in text:
            raise EtcdError(f"transfer-leadership to {target_id}: {text[:200]!r}")

    async def hedged(
        self, path: str, body: dict[str, Any], hedge_after: float, until: float
    ) -> dict[str, Any]:
        """POST ``body`` (a request safe to repeat) through the JSON gateway until ``until`` (the
        loop's clock), hedged (see ``_hedge``)."""
        payload = json.dumps(body)

        async def attempt(index: int, limit: float) -> tuple[int, bytes]:
            return await self._post(index, path, payload, limit)

        return await self._hedge(path, attempt, self._judge, hedge_after, until)

    async def _hedge(
        self,
        path: str,
        attempt: Callable[[int, float], Coroutine[Any, Any, _T]],
        judge: Callable[[int, str, asyncio.Task[_T], float], tuple[_R | None, str, bool]],
        hedge_after: float,
        until: float,
    ) -> _R:
        """Send a request safe to repeat until ``until`` (the loop's clock), hedged: one
        ``attempt`` on the current member, and while none has answered, another on the next
        member every ``hedge_after`` seconds (at once when one fails fast), cycling through
        them; earlier attempts keep running, and the first answer ``judge`` accepts wins.

        A paused or cut-off member costs ``hedge_after``, not the whole deadline; a commit that
        is merely slower than ``hedge_after`` (a slow link to a far leader) still answers, where
        abandoning each attempt at a fixed timeout would never let one finish. Raises like
        ``call`` when nothing answered by ``until``.
        """
        self._maybe_probe_home()
        loop = asyncio.get_running_loop()
        count = len(self.endpoints)
        pending: dict[asyncio.Task[_T], tuple[int, float]] = {}
        failures: list[str] = []
        maybe_applied = False
        refusal: EtcdError | None = None
        """A member's refusal of the request itself; final only while no other attempt is out
        there and none may have reached a member: a refusal says nothing about those."""
        launched = 0
        next_at = loop.time()
        try:
            while True:
                now = loop.time()
                if now >= until:
                    break
                capped = len(pending) >= 2 * count
                if now >= next_at and not capped:
                    index = (self._current + launched) % count
                    launched += 1
                    task = loop.create_task(attempt(index, until - now))
                    pending[task] = (index, now)
                    next_at = now + hedge_after
                    capped = len(pending) >= 2 * count
                # at the cap nothing is launched: wait for an answer (not for next_at, which
                # stays in the past and would spin this loop)
                wait = max(0.0, (until if capped else min(next_at, until)) - loop.time())
                if not pending:
                    await asyncio.sleep(wait)
                    continue
                done, _ = await asyncio.wait(
                    pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    index, started = pending.pop(task)
                    try:
                        data, why, reached = judge(index, path, task, until - started)
                    except EtcdError as exc:  # refused by this member
                        refusal = refusal or exc
                        data, why, reached = None, str(exc), False
                    if data is not None:
                        return data
                    failures.append(why)
                    maybe_applied = maybe_applied or reached
                    if loop.time() - started < hedge_after:
                        # failed fast (refused, no leader): the next member at once, but a
                        # whole round of fast failures waits a little before the next round
                        pause = 0.0 if launched % count else min(hedge_after, 0.05)
                        next_at = min(next_at, loop.time() + pause)
                if refusal is not None and not pending and not maybe_applied:
                    raise refusal
        finally:
            for task in pending:
                task.cancel()
        if pending:
            maybe_applied = True  # attempts still out there when we gave up
        if refusal is not None and not maybe_applied:
            raise refusal
        raise EtcdUnavailableError(
            f"{path}: no etcd member answered in time ({'; '.join(failures[-5:]) or 'no answer'})",
            maybe_applied,
        )

    async def _grpc_txn(self, index: int, request: bytes, limit: float) -> bytes:
        txn = cast(
            "grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]",
            self._channel(index).unary_unary(etcdwire.TXN),
        )
        return await txn(request, timeout=limit)

    def _judge_grpc(
        self, index: int, path: str, attempt: asyncio.Task[bytes], limit: float
    ) -> tuple[bytes | None, str, bool]:
        """``_judge`` for a gRPC attempt: the same three outcomes from gRPC's status."""
        endpoint = self.endpoints[index]
        try:
            answer = attempt.result()
        except asyncio.CancelledError:  # the call was cancelled here after it may have left
            return None, f"{endpoint}: call cancelled", True
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if "failed to connect to all addresses" in details:
                # no connection could be made (refused, timed out, or still backing off after
                # a refusal): the request was never sent
                return None, f"{endpoint}: {details.rsplit(': ', 1)[-1]}", False
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and "etcdserver" not in details:
                # paused, partitioned or without quorum: it may sit in that member
                return None, f"{endpoint}: no answer within {limit:.3g}s", True
            if code in _REFUSALS and not any(s in details for s in _UNAVAILABLE):
                raise EtcdError(f"{path}: {code.name}: {details}") from None
            # etcd cannot commit right now, or the stream broke after sending: it may have
            return None, f"{endpoint}: {details or code.name}", True
        except Exception as exc:  # anything else after the call started: it may have been sent
            return None, f"{endpoint}: {exc!r}", True
        if index != self._current:
            self.failovers += 1
            self._current = index
        return answer, "", False

    async def put(self, key: bytes, value: bytes) -> int:
        data = await self.call("kv/put", {"key": b64(key), "value": b64(value)})
        return int(data["header"]["revision"])

    async def get_range(
        self,
        start: bytes,
        end: bytes,
        limit: int = 0,
        keys_only: bool = False,
        max_mod_revision: int = 0,
    ) -> tuple[list[KeyValue], int, bool]:
        """Keys in ``[start, end)`` in key order: (kvs, header revision, more)."""
        body: dict[str, Any] = {"key": b64(start), "range_end": b64(end), "limit": limit}
        if keys_only:
            body["keys_only"] = True
        if max_mod_revision:
            body["max_mod_revision"] = max_mod_revision
        data = await self.call("kv/range", body)
        kvs = [_kv(raw) for raw in data.get("kvs", [])]
        return kvs, int(data["header"]["revision"]), bool(data.get("more", False))

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

    async def create(
        self, key: bytes, value: bytes, timeout: float | None = None
    ) -> tuple[int, bool]:
        """Write ``key`` only if it does not exist yet.

        Returns (revision, True) when this call wrote it, (mod revision, True) when the key
        already holds exactly ``value`` (an earlier attempt of ours landed), and (mod revision,
        False) when it holds something else.
        """
        revision, stored = await self.create_or_read(key, value, timeout)
        return revision, stored == value

    async def create_or_read(
        self,
        key: bytes,
        value: bytes,
        timeout: float | None = None,
        *,
        hedge_after: float | None = None,
        until: float | None = None,
        floor: tuple[bytes, bytes] | None = None,
    ) -> tuple[int, bytes | None]:
        """Write ``key`` only if it does not exist yet, in one transaction: (revision, ``value``)
        when this call wrote it, else (mod revision, the value the key holds). With
        ``hedge_after`` and ``until``, the transaction is sent ``hedged`` (it is safe to repeat:
        whichever copy commits first decides, the others read the key). With ``floor`` =
        (floor key, bound), it writes only while the floor key holds a value below ``bound``
        (bytes order): a key deleted once the floor passed it can never be created again
        (answer: (0, None), as for a key that is not there)."""
        if hedge_after is not None and until is not None and self.transport == "grpc":
            request = etcdwire.create_if_absent(key, value, floor)

            async def attempt(index: int, limit: float) -> bytes:
                return await self._grpc_txn(index, request, limit)

            raw = await self._hedge("kv/txn", attempt, self._judge_grpc, hedge_after, until)
            try:
                answer = etcdwire.txn_answer(raw)
            except etcdwire.WireError as exc:  # answered, so it may well have committed
                raise EtcdUnavailableError(f"kv/txn: unreadable answer ({exc})", True) from exc
            if answer.succeeded:
                return answer.revision, value
            if not answer.ranged:
                return 0, None
            return answer.ranged[0].mod_revision, answer.ranged[0].value
        k = b64(key)
        compare: list[dict[str, str]] = [
            {"key": k, "target": "CREATE", "create_revision": "0", "result": "EQUAL"}
        ]
        if floor is not None:
            compare.append(
                {"key": b64(floor[0]), "target": "VALUE", "value": b64(floor[1]), "result": "LESS"}
            )
        body = {
            "compare": compare,
            "success": [{"request_put": {"key": k, "value": b64(value)}}],
            "failure": [{"request_range": {"key": k}}],
        }
        if hedge_after is not None and until is not None:
            data = await self.hedged("kv/txn", body, hedge_after, until)
        else:
            data = await self.call("kv/txn", body, timeout)
        if data.get("succeeded"):
            return int(data["header"]["revision"]), value
        kvs = data["responses"][0]["response_range"].get("kvs", [])
        if not kvs:  # deleted in between (compaction): treat as someone else's key
            return 0, None
        existing = _kv(kvs[0])
        return existing.mod_revision, existing.value

    async def raise_to(self, key: bytes, value: bytes) -> None:
        """Make ``key`` hold at least ``value`` (bytes order): create it, or replace a smaller
        value; never lower it, however many callers raise it at once."""
        k, v = b64(key), b64(value)
        put = [{"request_put": {"key": k, "value": v}}]
        absent = {"key": k, "target": "CREATE", "create_revision": "0", "result": "EQUAL"}
        if (await self.call("kv/txn", {"compare": [absent], "success": put})).get("succeeded"):
            return
        below = {"key": k, "target": "VALUE", "value": v, "result": "LESS"}
        await self.call("kv/txn", {"compare": [below], "success": put})

    async def get(self, key: bytes, timeout: float | None = None) -> KeyValue | None:
        """The key's value and mod revision (a linearizable read), None when it does not exist."""
        kvs = (await self.call("kv/range", {"key": b64(key)}, timeout)).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    async def delete_keys(self, keys: Sequence[bytes]) -> None:
        """Delete ``keys`` in transactions of at most 100 operations."""
        for i in range(0, len(keys), 100):
            ops = [{"request_delete_range": {"key": b64(k)}} for k in keys[i : i + 100]]
            await self.call("kv/txn", {"success": ops})

    async def compact(self, revision: int) -> None:
        try:
            await self.call("kv/compaction", {"revision": revision})
        except EtcdError as exc:
            if "compacted" not in str(exc):
                raise

    async def watch(self, start: bytes, end: bytes, revision: int) -> AsyncIterator[KeyValue]:
        """Every put to ``[start, end)`` from ``revision`` on, in revision order (no deletes).

        Ends (raising ``EtcdUnavailableError``) when the stream breaks; the caller resumes
        from the revision after the last event it saw. Raises ``EtcdCompactedError`` when
        ``revision`` is older than the cluster's history.
        """
        if self.transport == "grpc":
            async for kv in self._watch_grpc(start, end, revision):
                yield kv
            return
        body = {
            "create_request": {
                "key": b64(start),
                "range_end": b64(end),
                "start_revision": revision,
                "filters": ["NODELETE"],
            }
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=0.5)
        url = f"{self.endpoint}/v3/watch"
        try:
            async with self.session.post(url, data=json.dumps(body), timeout=timeout) as response:
                pending = b""
                async for block in response.content.iter_any():
                    pending += block
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        message = json.loads(line)
                        if "error" in message:
                            raise EtcdUnavailableError(f"watch: {message['error']}")
                        result = message.get("result", {})
                        if result.get("compact_revision") not in (None, "0"):
                            raise EtcdCompactedError(
                                f"watch from revision {revision}: history compacted up to "
                                f"{result['compact_revision']}"
                            )
                        for event in result.get("events", []):
                            yield _kv(event["kv"])
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._current = (self._current + 1) % len(self.endpoints)
            raise EtcdUnavailableError(f"watch on {url}: {exc}") from exc
        self._current = (self._current + 1) % len(self.endpoints)
        raise EtcdUnavailableError("watch stream ended")

    async def _watch_grpc(self, start: bytes, end: bytes, revision: int) -> AsyncIterator[KeyValue]:
        endpoint = self.endpoints[self._current]
        watch = cast(
            "grpc.aio.StreamStreamMultiCallable[bytes, bytes]",
            self._channel(self._current).stream_stream(etcdwire.WATCH),
        )
        call = watch(metadata=_REQUIRE_LEADER)
        try:
            # the request side stays open: etcd ends a watch stream whose client half-closes
            await call.write(etcdwire.watch_create(start, end, revision))
            while True:
                raw = await call.read()
                if not isinstance(raw, bytes):  # grpc.aio.EOF: the stream ended
                    break
                try:
                    answer = etcdwire.watch_answer(raw)
                except etcdwire.WireError as exc:
                    raise EtcdUnavailableError(f"watch on {endpoint}: {exc}") from exc
                if answer.compact_revision:
                    raise EtcdCompactedError(
                        f"watch from revision {revision}: history compacted up to "
                        f"{answer.compact_revision}"
                    )
                if answer.canceled:  # "no leader", say: the next member
                    self._current = (self._current + 1) % len(self.endpoints)
                    raise EtcdUnavailableError(f"watch canceled: {answer.cancel_reason}")
                for kv in answer.puts:
                    yield kv
        except grpc.aio.AioRpcError as exc:
            self._current = (self._current + 1) % len(self.endpoints)
            raise EtcdUnavailableError(
                f"watch on {endpoint}: {exc.details() or exc.code().name}"
            ) from exc
        finally:
            call.cancel()
        self._current = (self._current + 1) % len(self.endpoints)
        raise EtcdUnavailableError("watch stream ended")


class EtcdCompactedError(EtcdError):
    """The revision asked for is older than the history etcd still keeps."""
