"""Free loopback ports for the processes the harness starts (chains, etcd, nodes, attestors)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A TCP (or, with ``udp``, a UDP) port free on ``host`` at the time of asking."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free on ``host`` at the time of asking (attestors' latency responders)."""
    return free_port(host, udp=True)
