"""The harness's free ports: bindable, never handed out twice, and below the kernel's ephemeral
range, where no outgoing connection's local port can take one before its process binds it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet import ports
from devnet.ports import free_port, free_udp_port


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    tcp = [free_port() for _ in range(200)]
    udp = [free_udp_port() for _ in range(50)]
    assert len(set(tcp)) == len(tcp) and len(set(udp)) == len(udp)
    assert all(port < ephemeral_low for port in tcp + udp)
    with socket.socket() as s:
        s.bind(("127.0.0.1", tcp[-1]))  # free when handed out, and still free now


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        busy: int = held.getsockname()[1]
        # The busy port drawn first, then others.
        draws: Iterator[int] = iter([busy, *range(busy + 1, busy + 50)])

        class Draws:
            def randint(self, low: int, high: int) -> int:
                return next(draws)

        monkeypatch.setattr(ports, "_random", Draws())
        monkeypatch.setattr(ports, "_handed", set())
        assert busy < free_port() < busy + 50  # skipped the port in use
