"""A site's delaying relay: fibre distance and link faults, emulated in user space.

The kernel here has neither ``netem`` nor ``tbf``, so packets cannot be delayed where they
travel. Instead every byte between two sites goes through a relay: in site A's namespace the
relay listens at each other site B's *virtual* address (``devnet.netns``) on B's service ports,
and carries each connection to B's *real* address, holding every chunk of bytes for the one-way
delay of its direction (A to B on the way out, B to A on the way back) before passing it on, in
order. A new connection's first bytes also wait one round trip (the TCP handshake a real link
would cost). UDP datagrams (the attestors' latency probes) are delayed the same way.

Each directed link A->B has one delay and can be cut. Connections A opened carry A->B as their
"out" direction, connections B opened (through B's relay) carry it as their "in" direction, so
the harness sets a link on both relays (``Relays.set_link``). A cut direction holds its bytes
(TCP: what a partition does to a connection that outlives it: retransmitted after the heal) and
drops datagrams; a connection opened across a cut waits to reach the other side until the heal.

    python -m devnet.relay CONFIG.json   (inside the site's namespace; the harness starts it)

CONFIG: ``{"site", "control": unix socket path, "echo": [real host, port], "links": [{"peer",
"listen", "target", "tcp": [ports], "udp": [ports], "out_us", "in_us"}]}``. The control socket
takes one JSON request per line: ``{"op": "set", "peer", "direction": "out"|"in", "delay_us",
"cut"}``, ``{"op": "stats"}``, ``{"op": "ping"}``. A TCP echo service on the site's real address
lets the harness measure the round trip of every link through the relays.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOLD_LIMIT = 8 * 1024 * 1024
"""Bytes one direction of one connection holds before it stops reading (TCP back-pressure)."""


class Direction:
    """One direction of one directed link: its delay, whether it is cut, its byte count."""

    def __init__(self, delay_us: int) -> None:
        self.delay = delay_us / 1e6
        self.cut = False
        self.healed_at = 0.0
        self.bytes = 0
        self.changed = threading.Condition()

    def set(self, delay_us: int | None, cut: bool | None) -> None:
        with self.changed:
            if delay_us is not None:
                self.delay = delay_us / 1e6
            if cut is not None:
                if self.cut and not cut:
                    self.healed_at = time.monotonic()
                self.cut = cut
            self.changed.notify_all()

    def wait_open(self) -> bool:
        """Block while cut; True when it had to wait."""
        with self.changed:
            if not self.cut:
                return False
            while self.cut:
                self.changed.wait()
            return True


class Link:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.peer: str = spec["peer"]
        self.listen: str = spec["listen"]
        self.target: str = spec["target"]
        self.tcp: list[int] = list(spec.get("tcp", []))
        self.udp: list[int] = list(spec.get("udp", []))
        self.out = Direction(int(spec["out_us"]))
        self.back = Direction(int(spec["in_us"]))
        self.connections = 0

    @property
    def rtt(self) -> float:
        return self.out.delay + self.back.delay


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


class Pipe:
    """Bytes one way through one connection: read, hold for the direction's delay, write."""

    def __init__(
        self, src: socket.socket, dst: socket.socket, direction: Direction, not_before: float
    ) -> None:
        self.src, self.dst, self.direction = src, dst, direction
        self.not_before = not_before
        self.queue: deque[tuple[float, bytes]] = deque()
        self.held = 0
        self.cond = threading.Condition()
        self.last_due = 0.0
        self.failed = False
        self.done = threading.Event()
        self.on_fail: Callable[[], None] = lambda: None

    def start(self, on_fail: Callable[[], None]) -> None:
        self.on_fail = on_fail
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.src.recv(262144)
            except OSError:
                data = b""
            now = time.monotonic()
            due = max(max(now, self.not_before) + self.direction.delay, self.last_due)
            self.last_due = due
            with self.cond:
                while self.held > HOLD_LIMIT and not self.failed:
                    self.cond.wait()
                if self.failed:
                    return
                self.queue.append((due, data))
                self.held += len(data)
                self.cond.notify_all()
            if not data:
                return

    def _write(self) -> None:
        direction = self.direction
        while True:
            with self.cond:
                while not self.queue and not self.failed:
                    self.cond.wait()
                if self.failed:
                    return
                due = self.queue[0][0]
            if direction.wait_open():  # cut: held bytes cross one delay after the heal
                due = max(due, direction.healed_at + direction.delay)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.monotonic()
            parts: list[bytes] = []
            eof = False
            with self.cond:
                while self.queue and self.queue[0][0] <= max(now, due):
                    _, data = self.queue.popleft()
                    self.held -= len(data)
                    if not data:
                        eof = True
                        break
                    parts.append(data)
                self.cond.notify_all()
            try:
                if parts:
                    payload = b"".join(parts)
                    self.dst.sendall(payload)
                    direction.bytes += len(payload)
                if eof:
                    self.dst.shutdown(socket.SHUT_WR)
                    self.done.set()
                    return
            except OSError:
                self.fail()
                return

    def fail(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()
        self.done.set()
        self.on_fail()


class Relay:
    def __init__(self, config: dict[str, Any]) -> None:
        self.site: str = config["site"]
        self.links = {spec["peer"]: Link(spec) for spec in config["links"]}
        self.control_path = Path(config["control"])
        self.echo = (str(config["echo"][0]), int(config["echo"][1]))
        self.lock = threading.Lock()

    # ------------------------------------------------------------------------------- TCP

    def _serve_tcp(self, link: Link, port: int) -> None:
        listener = socket.create_server((link.listen, port), backlog=512)
        threading.Thread(target=self._accept, args=(listener, link, port), daemon=True).start()

    def _accept(self, listener: socket.socket, link: Link, port: int) -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=self._connect, args=(client, link, port), daemon=True).start()

    def _connect(self, client: socket.socket, link: Link, port: int) -> None:
        opened = time.monotonic()
        link.out.wait_open()  # a SYN does not cross a cut link
        try:
            upstream = socket.create_connection((link.target, port), timeout=5)
        except OSError:  # nothing listens there (a killed site): the client sees a reset
            with contextlib.suppress(OSError):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            _close(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            link.connections += 1
        # the client's first bytes leave after the handshake a real link would have cost
        out = Pipe(client, upstream, link.out, opened + link.rtt)
        back = Pipe(upstream, client, link.back, 0.0)

        def fail() -> None:
            _close(client, upstream)

        out.start(fail)
        back.start(fail)
        out.done.wait()
        back.done.wait()
        _close(client, upstream)

    # ------------------------------------------------------------------------------- UDP

    def _serve_udp(self, link: Link, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind((link.listen, port))
        timer = Timer()
        upstreams: dict[tuple[str, int], socket.socket] = {}

        def replies(client: tuple[str, int], upstream: socket.socket) -> None:
            while True:
                try:
                    data = upstream.recv(65536)
                except OSError:
                    return
                if not link.back.cut:
                    timer.at(
                        time.monotonic() + link.back.delay,
                        functools.partial(_sendto, listener, data, client, link.back),
                    )

        def receive() -> None:
            while True:
                data, client = listener.recvfrom(65536)
                upstream = upstreams.get(client)
                if upstream is None:
                    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    upstream.connect((link.target, port))
                    upstreams[client] = upstream
                    threading.Thread(target=replies, args=(client, upstream), daemon=True).start()
                if not link.out.cut:
                    timer.at(
                        time.monotonic() + link.out.delay,
                        functools.partial(_send, upstream, data, link.out),
                    )

        threading.Thread(target=receive, daemon=True).start()

    # ------------------------------------------------------------------------------- echo

    def _serve_echo(self) -> None:
        listener = socket.create_server(self.echo, backlog=64)

        def echo(conn: socket.socket) -> None:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

        def accept() -> None:
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=echo, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    # ------------------------------------------------------------------------------- control

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "site": self.site}
        if op == "set":
            link = self.links.get(request.get("peer", ""))
            if link is None or request.get("direction") not in ("out", "in"):
                return {"ok": False, "error": f"no link or direction in {request}"}
            direction = link.out if request["direction"] == "out" else link.back
            direction.set(request.get("delay_us"), request.get("cut"))
            return {"ok": True}
        if op == "stats":
            return {
                "ok": True,
                "links": {
                    peer: {
                        "out_us": round(link.out.delay * 1e6),
                        "in_us": round(link.back.delay * 1e6),
                        "out_cut": link.out.cut,
                        "in_cut": link.back.cut,
                        "out_bytes": link.out.bytes,
                        "in_bytes": link.back.bytes,
                        "connections": link.connections,
                    }
                    for peer, link in self.links.items()
                },
            }
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _serve_control(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.control_path))
        listener.listen(16)

        def serve(conn: socket.socket) -> None:
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    try:
                        answer = self.handle(json.loads(line))
                    except (ValueError, TypeError) as exc:
                        answer = {"ok": False, "error": str(exc)}
                    f.write(json.dumps(answer).encode() + b"\n")
                    f.flush()

        def accept() -> None:
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def start(self) -> None:
        for link in self.links.values():
            for port in link.tcp:
                self._serve_tcp(link, port)
            for port in link.udp:
                self._serve_udp(link, port)
        self._serve_echo()
        self._serve_control()


def _send(sock: socket.socket, data: bytes, direction: Direction) -> None:
    if not direction.cut:
        with contextlib.suppress(OSError):
            sock.send(data)
            direction.bytes += len(data)


def _sendto(sock: socket.socket, data: bytes, to: tuple[str, int], direction: Direction) -> None:
    if not direction.cut:
        with contextlib.suppress(OSError):
            sock.sendto(data, to)
            direction.bytes += len(data)


class Timer:
    """Runs callbacks at monotonic times, in time order, on one thread (datagram delays)."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.cond = threading.Condition()
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def at(self, when: float, fn: Callable[[], None]) -> None:
        with self.cond:
            self.count += 1
            heapq.heappush(self.heap, (when, self.count, fn))
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.heap:
                    self.cond.wait()
                when, _, fn = self.heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                heapq.heappop(self.heap)
            fn()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m devnet.relay CONFIG.json", file=sys.stderr)
        return 2
    sys.setswitchinterval(0.0002)  # a thread due to send must not wait out another's 5 ms slice
    relay = Relay(json.loads(Path(args[0]).read_text()))
    relay.start()
    print(f"relay {relay.site} ready, pid {os.getpid()}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
