"""Sites as hosts: namespaces, links and relays are set up and torn down by the harness and
leave nothing behind; a cleanup removes what a killed run left, by the harness's prefix only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devnet import netns
from devnet.distance import DelayMatrix
from devnet.fabric import Fabric
from devnet.placement import ECHO_PORT
from tests.attestor_sites import wait_until

pytestmark = pytest.mark.skipif(
    netns.unavailable() is not None, reason=f"no network namespaces: {netns.unavailable()}"
)
SITES = ["fra1", "ams1", "lon1"]


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


def ours(owner: int) -> list[str]:
    return [name for name, pid in netns.harness_namespaces() if pid == owner]


def echo_time(fabric: Fabric, src: str, dst: str, timeout: float) -> float | None:
    """Echoes from ``src`` to ``dst`` through the relays on a fresh connection (after its
    handshake): the fastest of ten round trips in ms (the machine is shared), None when
    nothing came back in ``timeout``."""
    assert fabric.network is not None
    with fabric.network.host(src).namespace.entered():
        conn = socket.create_connection((fabric.network.host(dst).virtual, ECHO_PORT), 5)
    with conn:
        conn.settimeout(timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"a")
        best = float("inf")
        try:
            conn.recv(1)  # the first echo also pays the emulated handshake
            for _ in range(10):
                t = time.perf_counter()
                conn.sendall(b"b")
                conn.recv(1)
                best = min(best, time.perf_counter() - t)
        except TimeoutError:
            return None
        return best * 1000


def test_a_fabric_delays_and_cuts_links_and_leaves_nothing_behind(tmp_path: Path) -> None:
    before = root_links()
    matrix = DelayMatrix.of(SITES)
    fabric = Fabric.start(SITES, tmp_path, matrix)
    relays = [p.pid for p in fabric.relays.values()]
    try:
        assert sorted(ours(os.getpid())) == sorted(
            f"dcrh-{os.getpid()}-{role}" for role in [*SITES, "br", "obs"]
        )
        rtt = echo_time(fabric, "fra1", "lon1", 2.0)
        expected = matrix.rtt_us("fra1", "lon1") / 1000
        assert rtt is not None and expected <= rtt < expected + 5.0, (rtt, expected)
        fabric.cut("lon1", "fra1")  # one way: fra1's bytes reach lon1, the echo does not return
        assert echo_time(fabric, "fra1", "lon1", 0.5) is None
        assert not fabric.connected("fra1", "lon1") and fabric.quorum_side("fra1")
        fabric.isolate(["lon1"])
        assert not fabric.quorum_side("lon1") and fabric.quorum_side("ams1")
        fabric.heal()
        assert echo_time(fabric, "fra1", "lon1", 2.0) is not None
        fabric.set_link("fra1", "lon1", delay_us=50_000)  # a slow link
        slow = echo_time(fabric, "fra1", "lon1", 2.0)
        assert slow is not None and slow >= 50 + matrix.one_way_us["lon1", "fra1"] / 1000
        with fabric.observe():  # the harness's seat reaches the real addresses, undelayed
            assert fabric.network is not None
            socket.create_connection((fabric.network.host("ams1").real, ECHO_PORT), 2).close()
        assert netns.harness_namespaces()  # still up while in use
    finally:
        fabric.stop()
    assert ours(os.getpid()) == []
    assert root_links() == before  # no veth or bridge was ever in the machine's namespace
    for pid in relays:  # killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cleanup_removes_only_stale_namespaces_with_the_harness_prefix() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid no process has any more: the owner of a killed run
    stale = netns.Namespace(f"{netns.PREFIX}-{dead.pid}-fra1")
    foreign = netns.Namespace(f"not{netns.PREFIX}-{dead.pid}-fra1")
    live = netns.Namespace(f"{netns.PREFIX}-{os.getpid()}-live")
    for ns in (stale, foreign, live):
        subprocess.run(["ip", "netns", "add", ns.name], check=True)
    orphan = subprocess.Popen(stale.command(["sleep", "60"]))
    try:
        wait_until(lambda: orphan.pid in stale.pids(), 5, "the orphan inside its namespace")
        done = subprocess.run(
            [sys.executable, "-m", "devnet.campaign", "--cleanup"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert stale.name in done.stdout
        names = {name for name, _ in netns.harness_namespaces()}
        assert stale.name not in names and live.name in names  # an owner still running: kept
        assert Path(foreign.path).exists()  # not the harness's: never touched
        assert orphan.wait(5) == -9  # the processes inside were killed
    finally:
        orphan.kill()
        for ns in (stale, foreign, live):
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
