"""The order gateway of one site: HTTP in, group-committed etcd log out, ack after commit.

``POST /orders`` takes one message (the wire format of ``validator.engine.codec``), ``POST
/orders/batch`` a JSON list of them (acknowledged together). The answer carries each message's
log position: ``rev`` (the etcd revision of its chunk, the order of the log) and ``pos`` (its
index in the chunk). A retry of an order this gateway acknowledged recently (same account and
client order id, same content) gets the original position with ``"duplicate": true`` and is not
logged again; a retry through another gateway, or one this gateway has forgotten, is logged and
the engine rejects it (``duplicate_order_id``), so an order never trades twice.

When etcd does not commit in time the answer is never a guess: 503 ``"outcome": "refused"`` when
the write is guaranteed never to commit (no member received it, or its key was fenced), 504
``"outcome": "unknown"`` when it may still commit (no quorum could be reached even to fence it).
Either way retrying an order with the same client order id is safe, and so is retrying a deposit
or withdrawal with the same ``request_id`` (one of the account's client ids, shared with its
order ids: a second copy is rejected as ``duplicate_request_id``). A transfer sent without one
(``request_id`` 0) has nothing a second copy could be refused by: after a 504 (``"retry_safe":
false``) the client reads the account before it sends it again.

While its site is **degraded** (``validator.node.sitewatch``: UPS on battery, clock
unsynchronised, disk nearly full) the gateway takes no new orders (``order``, ``replace``): 503
``"outcome": "refused"`` with ``"degraded": [reasons]``, and nothing of the request is logged, so
a client sends it to another site's gateway at once (``devnet.flow`` does: any refusal moves it
on). Cancels, retries of orders it already acknowledged and operator messages are still taken:
a venue in trouble should let its clients reduce risk, not add it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress, repeat
from typing import Any

import msgspec

from validator.engine.codec import (
    decode_message,
    decode_object,
    decode_request_lines,
    encode_messages,
    loads_strict,
)
from validator.engine.errors import MessageError
from validator.engine.messages import CancelReplace, Deposit, Message, NewOrder, Withdraw
from validator.node.errors import EtcdError, SiteDegradedError, WriteOutcomeUnknownError
from validator.node.sequencer import Sequencer

UNAVAILABLE = (
    "log unavailable: etcd did not commit ({reason}); NOT acknowledged, and it never will be. "
    "Retrying with the same client order id is safe."
)
UNKNOWN = (
    "outcome unknown: etcd did not confirm the write ({reason}) and it may still commit. "
    "Retry with the same client order id (or a transfer's request_id): a second copy is "
    "rejected as duplicate_order_id (duplicate_request_id)."
)
UNKNOWN_TRANSFER = (
    "outcome unknown: etcd did not confirm the write ({reason}) and it may still commit. "
    "A deposit or withdrawal without a request_id carries nothing a second copy could be "
    "refused by, so it would apply again: read the account from a node (GET /accounts/{{id}}) "
    "before sending it again; orders may be retried with the same client order id, transfers "
    "with the same request_id."
)
MAX_BATCH = 5_000
_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
_encode_json = msgspec.json.Encoder().encode
"""Compact JSON for the answers (a seventh of ``json.dumps``'s cost for a batch's acks)."""


def decode_body(body: bytes, batch: bool) -> tuple[list[Message], list[bytes] | None]:
    """The messages of a request body (one message, or a JSON list of them for ``batch``), and
    their canonical lines where the body held exactly those (else None: ``accept_messages``
    encodes them); ``MessageError`` if it is not one, naming the message (``message i:``) where
    it can.

    A list is split into its elements' bytes by msgspec, and the elements are decoded together
    by ``codec.decode_request_lines`` (one msgspec call, the checks over all of them at once)
    or, where it declines, each on its own by ``decode_message``. Both fast paths take an
    element as written (``json.dumps``'s spaces included) only where the reference would decode
    it to the same message, and the reference decides everything else: a body is accepted
    exactly when ``json`` (duplicate keys refused) and the reference accept every element. A
    body msgspec cannot split goes to ``json`` whole, which names the problem. A client that
    writes each message canonically (compact JSON, keys sorted: ``codec.encode_message``) saves
    the gateway encoding them again: its elements are logged as they came.
    """
    if not batch:
        try:
            return [decode_message(body)], None
        except MessageError as exc:
            raise MessageError(f"message 0: {exc}") from None
    try:
        elements: list[Any] = _ELEMENTS.decode(body)
    except (msgspec.MsgspecError, RecursionError):
        parsed = loads_strict(body)  # raises, or holds what msgspec could not split (NaN...)
        if not isinstance(parsed, list) or not parsed:
            raise MessageError("expected a non-empty JSON list") from None
        _check_size(parsed)
        return [_decode_item(i, item, decode_object) for i, item in enumerate(parsed)], None
    if not elements:
        raise MessageError("expected a non-empty JSON list")
    _check_size(elements)
    lines = [bytes(element) for element in elements]
    decoded = decode_request_lines(lines)  # all at once, or None: then one by one
    if decoded is not None:
        msgs, canonical = decoded
        return msgs, lines if canonical else None
    return [_decode_item(i, line, decode_message) for i, line in enumerate(lines)], None


def _check_size(elements: list[Any]) -> None:
    if len(elements) > MAX_BATCH:
        raise MessageError(f"at most {MAX_BATCH} messages per request, got {len(elements)}")


def _decode_item(i: int, item: Any, decode: Callable[[Any], Message]) -> Message:
    try:
        return decode(item)
    except MessageError as exc:
        raise MessageError(f"message {i}: {exc}") from None


def unknown_answer(msgs: list[Message], reason: object) -> dict[str, Any]:
    """The 504 body for a write that may still commit: whether a retry is safe depends on what
    the request held (a retried order, or a transfer with a request_id, is refused as a
    duplicate; a transfer without one is applied again)."""
    if any(isinstance(msg, Deposit | Withdraw) and not msg.request_id for msg in msgs):
        return {"error": UNKNOWN_TRANSFER.format(reason=reason), "outcome": "unknown",
                "retry_safe": False}  # fmt: skip
    return {"error": UNKNOWN.format(reason=reason), "outcome": "unknown", "retry_safe": True}


def _dedup_key(msg: Message) -> tuple[str, int] | None:
    if isinstance(msg, NewOrder):
        return (msg.account, msg.order_id)
    if isinstance(msg, CancelReplace):
        return (msg.account, msg.new_order_id)
    if isinstance(msg, Deposit | Withdraw) and msg.request_id:
        return (msg.account, msg.request_id)
    return None


def _no_reasons() -> list[str]:
    return []


class Gateway:
    def __init__(
        self,
        sequencer: Sequencer,
        site: str,
        remember: int = 1_000_000,
        degraded: Callable[[], list[str]] = _no_reasons,
        transfer_request_ids: bool = True,
    ) -> None:
        self.sequencer = sequencer
        self.site = site
        self.transfer_request_ids = transfer_request_ids
        """False during a rolling upgrade: a transfer carrying a request_id is refused (a node not
        yet upgraded would not read the line)."""
        self.degraded = degraded
        """Why this site is degraded now (empty: it is not); new orders are refused meanwhile."""
        self.refused_degraded = 0
        self.remember = remember
        self.generation = max(1, remember // 2)
        self._recent: dict[bytes, tuple[int, int]] = {}
        self._older: dict[bytes, tuple[int, int]] = {}
        """Canonical line -> (revision, index) of acknowledged orders and transfers with a
        ``request_id``, in two generations: new ones go into ``_recent``, and once a request
        leaves it holding ``generation`` lines or more it becomes ``_older`` (the older one is
        dropped). So the newest ``remember // 2`` at least are answered from memory, and at
        most ``remember`` plus one request's (the engine still rejects retries of older ones);
        ``remember`` 0: none. Keyed by the line: a retry is the same message, so the same
        line; an id reused with other content is another line, logged (the engine rejects
        it), and a resend of that copy is answered with its own position."""
        self.acknowledged = 0

    async def accept(self, raw: list[Any]) -> list[dict[str, Any]]:
        """Log the messages given as parsed JSON (``accept_messages``); raises MessageError
        naming the first that is not a message."""
        return await self.accept_messages(
            [_decode_item(i, item, decode_object) for i, item in enumerate(raw)]
        )

    async def accept_messages(
        self, msgs: list[Message], lines: list[bytes] | None = None
    ) -> list[dict[str, Any]]:
        """Log the messages (or recognise retries); raises MessageError, SiteDegradedError (new
        orders while the site is degraded; nothing logged), WriteRefusedError (never committed),
        WriteOutcomeUnknownError (may still commit), EtcdError. ``lines``: the messages'
        canonical lines where the caller has them (``decode_body``), else they are encoded."""
        if lines is None:
            lines = encode_messages(msgs)
        reasons = self.degraded()  # one verdict for the request: nothing below awaits
        recent, older = self._recent, self._older
        seen: list[tuple[int, int] | None] = list(map(recent.get, lines))
        if older and any(map(older.__contains__, lines)):
            pairs = zip(seen, lines, strict=True)
            seen = [known if known is not None else older.get(line) for known, line in pairs]
        if reasons or not self.transfer_request_ids:
            self._refuse(msgs, seen, reasons)
        acks: list[dict[str, Any]] = []
        fresh_at: list[int] | None = None  # None: every message is new (the common request)
        fresh, fresh_lines = msgs, lines
        if any(seen):  # retries of acknowledged messages: their first positions
            acks = [{}] * len(msgs)
            fresh_at = []
            for i, known in enumerate(seen):
                if known is None:
                    fresh_at.append(i)
                else:
                    acks[i] = {"rev": known[0], "pos": known[1], "duplicate": True}
            fresh = [msgs[i] for i in fresh_at]
            fresh_lines = [lines[i] for i in fresh_at]
        if fresh_lines:
            revision, first = await self.sequencer.submit(fresh_lines)
            positions = range(first, first + len(fresh_lines))
            if fresh_at is None:
                acks = [{"rev": revision, "pos": pos, "duplicate": False} for pos in positions]
            else:
                for i, pos in zip(fresh_at, positions, strict=True):
                    acks[i] = {"rev": revision, "pos": pos, "duplicate": False}
            self._remember(fresh, fresh_lines, revision, positions)
            self.acknowledged += len(fresh_lines)
        return acks

    def _refuse(
        self, msgs: list[Message], seen: list[tuple[int, int] | None], reasons: list[str]
    ) -> None:
        """Raise for the first message, in request order, that this gateway does not take now:
        a transfer's ``request_id`` during a rolling upgrade (MessageError), a new order or
        replace while the site is degraded (SiteDegradedError; a retry is still answered)."""
        check_transfers = not self.transfer_request_ids
        for i, msg in enumerate(msgs):
            if check_transfers and isinstance(msg, Deposit | Withdraw) and msg.request_id:
                raise MessageError(
                    f"message {i}: request_id: not accepted by this gateway yet (a rolling "
                    "upgrade is under way); if an earlier copy's outcome is unknown, read the "
                    "account from a node (GET /accounts/{id}) before sending it without one"
                )
            if reasons and seen[i] is None and isinstance(msg, NewOrder | CancelReplace):
                self.refused_degraded += 1
                raise SiteDegradedError(reasons, i)

    def _remember(
        self, msgs: list[Message], lines: list[bytes], revision: int, positions: range
    ) -> None:
        """Remember the logged messages that a retry is recognised by (orders, replaces,
        transfers with a ``request_id``; a transfer without one applies every copy). A line
        already remembered keeps its first position: a copy sent again while the first was
        in flight (neither found the other) is the one the engine rejects."""
        if not self.remember:
            return
        recent, older = self._recent, self._older
        kept = [type(msg) is NewOrder or _dedup_key(msg) is not None for msg in msgs]
        places = zip(repeat(revision), compress(positions, kept), strict=False)  # repeat: endless
        entries = list(zip(compress(lines, kept), places, strict=True))
        if any(map(recent.__contains__, lines)) or (older and any(map(older.__contains__, lines))):
            entries = [e for e in entries if e[0] not in recent and e[0] not in older]
        entries.reverse()  # a line sent twice in one request: its first copy is remembered
        recent.update(entries)
        if len(recent) >= self.generation:
            self._older, self._recent = recent, {}


class GatewayApp:
    """The gateway's HTTP interface as a bare ASGI application.

    Not FastAPI: on the order path its routing and middleware cost more CPU than validating
    and logging the order (profiled: about 40% of the gateway's busy time at 2,000 orders/s),
    and the gateway shares two cores with the nodes and etcd. Three routes, plain JSON bodies.
    """

    def __init__(
        self,
        gateway: Gateway,
        max_body: int = 8 * 1024 * 1024,
        site_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.gateway = gateway
        self.max_body = max_body
        self.site_health = site_health

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path in ("/orders", "/orders/batch"):
            if method != "POST":
                status, body = 405, {"error": f"{path} takes POST"}
            else:
                status, body = await self._orders(receive, batch=path == "/orders/batch")
        elif path == "/health" and method == "GET":
            status, body = 200, self.health()
        else:
            status, body = 404, {"error": f"no route {method} {path}"}
        payload = _encode_json(body)  # compact JSON, as ``json.dumps`` with no spaces
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read(self, receive: Any) -> bytes:
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise MessageError("client disconnected")
            part = message.get("body", b"")
            size += len(part)
            if size > self.max_body:
                raise MessageError(f"body over {self.max_body} bytes")
            parts.append(part)
            if not message.get("more_body"):
                return b"".join(parts)

    async def _orders(self, receive: Any, batch: bool) -> tuple[int, Any]:
        msgs: list[Message] = []
        try:
            msgs, lines = decode_body(await self._read(receive), batch)
            acks = await self.gateway.accept_messages(msgs, lines)
        except MessageError as exc:
            return 400, {"error": f"bad input: {exc}"}
        except SiteDegradedError as exc:
            return 503, {"error": str(exc), "outcome": "refused", "degraded": exc.reasons}
        except WriteOutcomeUnknownError as exc:
            return 504, unknown_answer(msgs, exc)
        except EtcdError as exc:
            return 503, {"error": UNAVAILABLE.format(reason=exc), "outcome": "refused"}
        return 200, ({"acks": acks} if batch else acks[0])

    def health(self) -> dict[str, Any]:
        g = self.gateway
        return {
            "site": g.site,
            "acknowledged": g.acknowledged,
            "chunks_written": g.sequencer.chunks_written,
            "write_retries": g.sequencer.retries,
            "writes_refused": g.sequencer.refused,
            "writes_found_after_deadline": g.sequencer.found_after_deadline,
            "writes_unknown": g.sequencer.unknown,
            "messages_queued": g.sequencer.queued,
            "writes_in_flight": g.sequencer.writes_in_flight,
            "refused_queue_full": g.sequencer.refused_queue_full,
            "etcd": g.sequencer.etcd.endpoint,
            "etcd_failovers": g.sequencer.etcd.failovers,
            "accepting_new_orders": not g.degraded(),
            "refused_degraded": g.refused_degraded,
            "condition": None if self.site_health is None else self.site_health(),
        }
