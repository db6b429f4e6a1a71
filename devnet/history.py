"""Clients that record a history: every attempt to log an order, and what came of it.

Each client sits at a site (in its namespace when the sites are hosts), sends one message per
request to its own site's gateway and, when a gateway refuses or does not answer, tries the
next site's gateway (nearest first, through the relays) with the *same* message, as a venue's
clients do with a client order id. Every attempt is an ``Op``: when it was sent and answered,
through which gateway, and its outcome:

- ``ok``: acknowledged at (``rev``, ``pos``): the gateway says etcd committed it there;
- ``fail``: refused for good (400 bad input, 503 ``"outcome": "refused"``: never committed);
- ``unknown``: 504 ``"outcome": "unknown"``, a timeout or a broken connection: it may or may
  not be logged.

After ``unknown`` a client retries only a message that carries a client order id (orders and
cancel-replaces: the engine rejects a second copy as ``duplicate_order_id``); a deposit, a
cancel or a listing whose outcome is unknown is not sent again, as a careful client would not.
A reader at one site polls nodes' ``/health`` to time read availability.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import requests

from devnet.http import http_json
from validator.engine.codec import decode_object, encode_message


@dataclass
class Op:
    index: int
    """The message's index in the flow (its identity: every line of a flow is distinct)."""
    client: int
    site: str
    """Where the client sits."""
    gateway: str
    """The site whose gateway this attempt went to."""
    line: str
    """The message's canonical line, as it appears in the log."""
    retriable: bool
    """Whether the message carries a client order id (safe to retry after ``unknown``)."""
    invoke: float
    complete: float
    result: str
    """``ok``, ``fail`` or ``unknown``."""
    status: int
    rev: int = 0
    pos: int = 0
    note: str = ""


def canonical(msgs: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str, bool]]:
    """(message, canonical line, retriable) for every message, repeats of a line dropped."""
    out, seen = [], set()
    for msg in msgs:
        line = encode_message(decode_object(msg)).decode()
        if line in seen:
            continue
        seen.add(line)
        out.append((msg, line, msg.get("type") in ("order", "replace")))
    return out


class History:
    """Every op of a run, appended from the client threads."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.reads: list[tuple[float, str]] = []
        """(time, site of the node) of every successful read."""
        self._lock = threading.Lock()

    def add(self, op: Op) -> None:
        with self._lock:
            self.ops.append(op)

    def acks(self) -> list[float]:
        return sorted(op.complete for op in self.ops if op.result == "ok")

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(op) for op in self.ops]

    @staticmethod
    def ops_from_json(items: list[dict[str, Any]]) -> list[Op]:
        return [Op(**item) for item in items]


class RecordingClients:
    """Client threads (``per_site`` at each site) sending a flow and recording a ``History``.

    ``gateways(site)`` lists the gateway URLs a client at ``site`` uses, own site first, with
    the site each belongs to; ``enter(site)`` moves the calling thread to ``site`` (its
    namespace) before it opens any connection.
    """

    def __init__(
        self,
        sites: Sequence[str],
        flow: list[tuple[dict[str, Any], str, bool]],
        gateways: Callable[[str], list[tuple[str, str]]],
        enter: Callable[[str], None],
        *,
        readers: Callable[[str], list[tuple[str, str]]] | None = None,
        per_site: int = 1,
        timeout: float = 2.0,
        pause: float = 0.005,
    ) -> None:
        self.history = History()
        self.flow, self.gateways, self.enter = flow, gateways, enter
        self.timeout, self.pause = timeout, pause
        self.stop = threading.Event()
        self.cursor = 0
        self._cursor_lock = threading.Lock()
        seats = [s for s in sites for _ in range(per_site)]
        self.clients = list(enumerate(seats))
        self.threads = [threading.Thread(target=self._client, args=c) for c in self.clients]
        if readers is not None:
            self.threads.append(threading.Thread(target=self._reader, args=(sites[0], readers)))

    def _next(self) -> int | None:
        with self._cursor_lock:
            if self.cursor >= len(self.flow):
                return None
            self.cursor += 1
            return self.cursor - 1

    def _client(self, client: int, site: str) -> None:
        self.enter(site)
        targets = self.gateways(site)
        g = 0
        while not self.stop.is_set() and (index := self._next()) is not None:
            msg, line, retriable = self.flow[index]
            while not self.stop.is_set():
                gateway, url = targets[g % len(targets)]
                op = self._attempt(client, site, gateway, url, index, msg, line, retriable)
                self.history.add(op)
                if op.result == "ok" or (op.result == "unknown" and not retriable):
                    g = 0  # back to the own site's gateway for the next message
                    break
                if op.status == 400:
                    break  # bad input: no gateway will take it
                g += 1  # the same message to the next site's gateway
                time.sleep(self.pause)
            time.sleep(self.pause)

    def _attempt(
        self,
        client: int,
        site: str,
        gateway: str,
        url: str,
        index: int,
        msg: dict[str, Any],
        line: str,
        retriable: bool,
    ) -> Op:
        invoke = time.monotonic()
        try:
            status, body = http_json(url + "/orders", msg, timeout=self.timeout)
        except OSError as exc:
            # A refused connection sent nothing: a definite failure. A timeout or a connection
            # broken after it was accepted may have delivered the request: unknown.
            refused = isinstance(exc, requests.ConnectionError) and "refused" in str(exc)
            sent = not (refused or isinstance(exc, requests.ConnectTimeout))
            return Op(
                index, client, site, gateway, line, retriable, invoke, time.monotonic(),
                "unknown" if sent else "fail", 0, note=type(exc).__name__,
            )  # fmt: skip
        complete = time.monotonic()
        op = Op(index, client, site, gateway, line, retriable, invoke, complete, "fail", status)
        if status == 200:
            op.result, op.rev, op.pos = "ok", int(body["rev"]), int(body["pos"])
        elif status == 504 or (isinstance(body, dict) and body.get("outcome") == "unknown"):
            op.result = "unknown"
        if status != 200 and isinstance(body, dict):
            op.note = str(body.get("outcome") or body.get("error", ""))[:80]
        return op

    def _reader(self, site: str, readers: Callable[[str], list[tuple[str, str]]]) -> None:
        self.enter(site)
        targets = readers(site)
        r = 0
        while not self.stop.is_set():
            node, url = targets[r % len(targets)]
            try:
                status, _ = http_json(url + "/health", timeout=0.3)
            except OSError:
                status = 0
            if status == 200:
                with self.history._lock:
                    self.history.reads.append((time.monotonic(), node))
            else:
                r += 1
            time.sleep(0.01)

    def start(self) -> RecordingClients:
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> History:
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.history


def dumps(history: History) -> str:
    return json.dumps(history.to_json())
