"""The network between the sites: namespaces, delaying relays, link faults, measured RTTs.

``Fabric.start(sites, root, matrix)`` puts every site in a network namespace of its own
(``devnet.netns``) and starts its relay (``devnet.relay``) with the one-way delays of
``matrix`` (``devnet.distance``); ``placements`` then tell the etcd cluster and the sites where
to run. Faults act on directed links (``set_link``: cut, or a different delay) and every link
goes back to the matrix with ``heal``. The harness itself sits in the observer namespace
(``observe``): it reaches every site directly, never delayed, never cut.

Where namespaces are not available (not root) the fabric is plain loopback: no distance and no
link faults, and ``describe()`` says so for every figure that quotes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet import netns
from devnet.distance import DelayMatrix
from devnet.errors import DevnetError
from devnet.nodes import ONE_HOST_PIPELINE_MIN
from devnet.placement import ATTESTOR_LATENCY_PORT, ECHO_PORT, TCP_SERVICE_PORTS, Placement


class FabricError(DevnetError):
    """Raised when the fabric cannot do what was asked: a relay that does not start or answer,
    a link fault on loopback."""


@dataclass
class Fabric:
    sites: tuple[str, ...]
    matrix: DelayMatrix
    root: Path
    network: netns.Network | None = None
    fallback_reason: str | None = None
    relays: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    links: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)
    """(src, dst) -> (one-way delay in us, cut) as now set."""
    changes: list[tuple[float, str, str, bool]] = field(default_factory=list)
    """(monotonic time both relays had it, src, dst, cut) of every link change made."""

    # ------------------------------------------------------------------ set-up and teardown

    @classmethod
    def start(
        cls,
        sites: Sequence[str],
        root: Path,
        matrix: DelayMatrix | None = None,
        namespaces: bool = True,
    ) -> Fabric:
        """Namespaces and relays when possible (``namespaces`` and root), else loopback."""
        root.mkdir(parents=True, exist_ok=True)
        reason = netns.unavailable() if namespaces else "namespaces not asked for"
        if reason is not None:
            return cls(tuple(sites), DelayMatrix.zero(sites), root, fallback_reason=reason)
        netns.cleanup()  # whatever a killed earlier run left behind
        matrix = matrix or DelayMatrix.of(sites)
        fabric = cls(tuple(sites), matrix, root, network=netns.create(sites))
        try:
            fabric._start_relays()
        except BaseException:
            fabric.stop()
            raise
        return fabric

    def _relay_config(self, site: str) -> dict[str, Any]:
        assert self.network is not None
        me = self.network.host(site)
        links = []
        for other in self.sites:
            if other == site:
                continue
            host = self.network.host(other)
            links.append(
                {
                    "peer": other,
                    "listen": host.virtual,
                    "target": host.real,
                    "tcp": [*TCP_SERVICE_PORTS, ECHO_PORT],
                    "udp": [ATTESTOR_LATENCY_PORT],
                    "out_us": self.matrix.one_way_us[site, other],
                    "in_us": self.matrix.one_way_us[other, site],
                }
            )
            self.links[site, other] = (self.matrix.one_way_us[site, other], False)
        return {
            "site": site,
            "control": str(self.root / f"relay-{site}.sock"),
            "echo": [me.real, ECHO_PORT],
            "links": links,
        }

    def _start_relays(self) -> None:
        assert self.network is not None
        for site in self.sites:
            config = self.root / f"relay-{site}.json"
            config.write_text(json.dumps(self._relay_config(site), indent=1))
            log = open(self.root / f"relay-{site}.log", "ab")  # noqa: SIM115 - owned by the child
            cmd = self.network.host(site).namespace.command(
                [sys.executable, "-m", "devnet.relay", str(config)]
            )
            self.relays[site] = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        for site in self.sites:
            while True:
                try:
                    self._control(site, {"op": "ping"})
                    break
                except (OSError, FabricError):
                    if self.relays[site].poll() is not None or time.monotonic() > deadline:
                        raise FabricError(
                            f"relay of {site} did not start; see {self.root}/relay-{site}.log"
                        ) from None
                    time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.relays.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.relays.clear()
        if self.network is not None:
            self.network.destroy()

    def __enter__(self) -> Fabric:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ where things run

    @property
    def namespaced(self) -> bool:
        return self.network is not None

    @property
    def placements(self) -> dict[str, Placement]:
        if self.network is None:
            return {s: Placement(s) for s in self.sites}
        out = {}
        for s in self.sites:
            host = self.network.host(s)
            prefix = ("setpriv", "--pdeathsig", "KILL", *host.namespace.command([]))
            out[s] = Placement(s, host.real, host.virtual, prefix, fixed_ports=True)
        return out

    @contextlib.contextmanager
    def observe(self) -> Iterator[None]:
        """The calling thread in the observer's seat for the ``with`` block."""
        if self.network is None:
            yield
            return
        with self.network.observer.entered():
            yield

    @contextlib.contextmanager
    def at(self, site: str) -> Iterator[None]:
        """The calling thread at ``site`` (in its namespace) for the ``with`` block."""
        if self.network is None:
            yield
            return
        with self.network.host(site).namespace.entered():
            yield

    def enter(self, site: str) -> None:
        """Move the calling thread into ``site``'s namespace for good (a client at that site)."""
        if self.network is not None:
            self.network.host(site).namespace.enter()

    def command_at(self, site: str, argv: Sequence[str]) -> list[str]:
        return self.placements[site].command(argv)

    # ------------------------------------------------------------------ links and faults

    def _control(self, site: str, request: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.root / f"relay-{site}.sock"))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                part = s.recv(65536)
                if not part:
                    break
                data += part
        answer: dict[str, Any] = json.loads(data)
        if not answer.get("ok"):
            raise FabricError(f"relay {site}: {answer.get('error')}")
        return answer

    def set_link(
        self, src: str, dst: str, *, delay_us: int | None = None, cut: bool | None = None
    ) -> None:
        """Change the directed link ``src -> dst``: its one-way delay, whether it is cut. Both
        relays carry it: ``src``'s on connections ``src`` opened, ``dst``'s on the others."""
        self.set_links([(src, dst, delay_us, cut)])

    def set_links(self, changes: Sequence[tuple[str, str, int | None, bool | None]]) -> None:
        """Make several link changes ``(src, dst, delay_us, cut)`` at once: every relay message
        is sent at the same time, so a site's uplink fails (or comes back) as one event rather
        than link by link (one after the other they took tenths of a second on a loaded
        machine, and a follower still hearing the leader meanwhile delayed the election)."""
        if self.network is None:
            raise FabricError(f"no links on loopback ({self.fallback_reason})")
        if not changes:
            return
        requests = []
        for src, dst, delay_us, cut in changes:
            change = {"delay_us": delay_us, "cut": cut}
            requests.append((src, {"op": "set", "peer": dst, "direction": "out", **change}))
            requests.append((dst, {"op": "set", "peer": src, "direction": "in", **change}))
        with ThreadPoolExecutor(len(requests)) as pool:
            for answer in [pool.submit(self._control, site, r) for site, r in requests]:
                answer.result()
        done = time.monotonic()
        for src, dst, delay_us, cut in changes:
            old_delay, old_cut = self.links[src, dst]
            self.links[src, dst] = (
                old_delay if delay_us is None else delay_us,
                old_cut if cut is None else cut,
            )
            self.changes.append((done, src, dst, self.links[src, dst][1]))

    def cut(self, src: str, dst: str) -> None:
        self.set_link(src, dst, cut=True)

    def isolate(self, group: Sequence[str]) -> None:
        """Cut every link between ``group`` and the other sites, both ways, at once."""
        others = [b for b in self.sites if b not in group]
        self.set_links(
            [(x, y, None, True) for a in group for b in others for x, y in ((a, b), (b, a))]
        )

    def heal(self) -> None:
        """Every link back to the matrix's delay, none cut, at once."""
        if self.network is None:
            return
        self.set_links(
            [
                (a, b, self.matrix.one_way_us[a, b], False)
                for (a, b), (delay, cut) in self.links.items()
                if cut or delay != self.matrix.one_way_us[a, b]
            ]
        )

    def connected(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` reach each other both ways now."""
        if a == b or self.network is None:
            return True
        return not self.links[a, b][1] and not self.links[b, a][1]

    def quorum_side(self, site: str) -> bool:
        """Whether ``site`` can reach a majority of the sites (itself included), both ways."""
        reach = sum(1 for other in self.sites if self.connected(site, other))
        return reach > len(self.sites) // 2

    def stats(self) -> dict[str, Any]:
        if self.network is None:
            return {}
        return {s: self._control(s, {"op": "stats"})["links"] for s in self.sites}

    # ------------------------------------------------------------------ measurements

    def measure_rtts(self, samples: int = 5) -> dict[tuple[str, str], float]:
        """Round trip in ms of every ordered pair, measured through the relays (the least of
        ``samples`` echoes after the connection is up); zeros on loopback."""
        out: dict[tuple[str, str], float] = {}
        for a in self.sites:
            for b in self.sites:
                if a == b:
                    continue
                if self.network is None:
                    out[a, b] = 0.0
                    continue
                target = (self.network.host(b).virtual, ECHO_PORT)
                with self.network.host(a).namespace.entered():
                    conn = socket.create_connection(target, timeout=10)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                best = math.inf
                with conn:
                    for _ in range(samples + 1):  # the first echo also pays the handshake
                        t = time.perf_counter()
                        conn.sendall(b"x")
                        conn.recv(1)
                        best = min(best, time.perf_counter() - t)
                out[a, b] = best * 1000
        return out

    def describe(self) -> str:
        if self.network is None:
            return f"loopback, one machine, no emulated distance ({self.fallback_reason})"
        return f"sites in separate network namespaces; {self.matrix.describe()}"


def etcd_timing(rtts_ms: dict[tuple[str, str], float]) -> tuple[int, int]:
    """etcd's heartbeat and election timeout from measured peer round trips, as etcd's tuning
    guide says: heartbeat about the largest round trip between members, election timeout at
    least 10 times it (and at least 5 heartbeats, which etcd requires). Never below the loopback
    setting the drill uses (30 ms, 300 ms)."""
    largest = max(rtts_ms.values(), default=0.0)
    heartbeat = max(30, math.ceil(largest))
    election = max(300, 10 * math.ceil(largest), 5 * heartbeat)
    return heartbeat, election


def gateway_tuning(rtts_ms: dict[tuple[str, str], float]) -> dict[str, Any]:
    """A gateway's write settings for sites this far apart (node settings fields):

    - ``write_attempt_timeout``: a member must be given time for a commit that crosses the
      largest round trip twice (forward to a far leader, its quorum), so 0.1 s + 2 x that RTT,
      never below the loopback 0.2 s;
    - ``max_inflight_writes``: a chunk write is in flight for about a round trip, and a request
      that finds every slot busy waits for one (measured: with 2 slots a Dallas client of a
      Frankfurt leader waited +150 ms at p50 beyond its 129 ms floor; with 8, +17 ms on the
      same loaded machine), so one slot per 10 ms of the largest round trip, at least 2;
    - ``pipeline_min_messages``: where a round trip costs more than a transaction's CPU (about
      1 ms across three members here), waiting for a write in flight costs more than another
      write, so every slot is used for even one message (1); closer than 2 ms, the one-host
      setting (a second write only for a worthwhile chunk).
    """
    largest = max(rtts_ms.values(), default=0.0)
    return {
        "write_attempt_timeout": round(max(0.2, 0.1 + 2 * largest / 1000), 3),
        "max_inflight_writes": max(2, math.ceil(largest / 10)),
        "pipeline_min_messages": 1 if largest >= 2 else ONE_HOST_PIPELINE_MIN,
    }
