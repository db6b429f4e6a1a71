"""Order flow for the venue's fault tests, the failover drill and the benchmarks.

``order_flow`` is a realistic, seeded flow of orders (with the generator's deliberate bad
inputs) as JSON objects; ``OrderClients`` sends it the way a venue's clients would: a few
clients each sending one order per request, and retrying the *same* order (same client order
id) on the next site's gateway whenever a gateway refuses or does not answer. Every
acknowledgement and refusal is timed, so a caller can measure how long writes stalled.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from devnet.http import http_json
from devnet.loggen import generate
from validator.engine.codec import encode_message


def order_flow(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A realistic order flow as JSON objects (with the generator's deliberate bad inputs), each
    with its keys in canonical (sorted) order."""
    return [json.loads(encode_message(m)) for m in generate(count, seed)]


def wire(obj: object) -> bytes:
    """A request body as compact JSON. A message of ``order_flow`` written so is its canonical
    line, which a gateway logs as it came instead of encoding it again (``json.dumps``'s default
    spaces cost a gateway about 0.6 us more per order in requests of 5,000)."""
    return json.dumps(obj, separators=(",", ":")).encode()


class OrderClients:
    """``clients`` threads sending single orders round-robin over ``msgs``; optionally one
    reader polling ``readers`` (nodes' ``/health``) to time read availability.

    With ``place``, client ``k`` first calls ``place(k)`` in its own thread: it may move the
    thread to a site (its network namespace) and returns the gateways that client uses, its own
    site's first; ``place_reader()`` does the same for the reader (sites as hosts)."""

    def __init__(
        self,
        gateways: list[str],
        msgs: list[dict[str, Any]],
        *,
        readers: Sequence[str] = (),
        clients: int = 2,
        timeout: float = 1.0,
        retry_pause: float = 0.005,
        place: Callable[[int], list[str]] | None = None,
        place_reader: Callable[[], list[str]] | None = None,
    ) -> None:
        self.gateways, self.readers, self.msgs = gateways, list(readers), msgs
        self.place, self.place_reader = place, place_reader
        self.timeout, self.retry_pause = timeout, retry_pause
        self.acked: list[tuple[int, int, dict[str, Any]]] = []
        """(revision, index, message) of every acknowledged order."""
        self.ack_times: list[float] = []
        self.refusal_times: list[float] = []
        self.read_times: list[float] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(k, clients)) for k in range(clients)
        ]
        if self.readers:
            self.threads.append(threading.Thread(target=self._reader))

    def _client(self, offset: int, stride: int) -> None:
        gateways = self.gateways if self.place is None else self.place(offset)
        g = offset if self.place is None else 0
        for i in range(offset, len(self.msgs), stride):
            while not self.stop.is_set():
                url = gateways[g % len(gateways)] + "/orders"
                try:
                    status, body = http_json(url, self.msgs[i], timeout=self.timeout)
                except OSError:
                    status, body = 0, None
                if status == 200:
                    self.acked.append((body["rev"], body["pos"], self.msgs[i]))
                    self.ack_times.append(time.monotonic())
                    break
                self.refusal_times.append(time.monotonic())
                g += 1  # fail over to the next site's gateway with the same order id
                time.sleep(self.retry_pause)
            if self.stop.is_set():
                return

    def _reader(self) -> None:
        readers = self.readers if self.place_reader is None else self.place_reader()
        r = 0
        while not self.stop.is_set():
            try:
                status, _ = http_json(readers[r % len(readers)] + "/health", timeout=0.3)
            except OSError:
                status = 0
            if status == 200:
                self.read_times.append(time.monotonic())
            else:
                r += 1
            time.sleep(0.01)

    def start(self) -> OrderClients:
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
