"""Free loopback ports for the processes the harness starts (chains, etcd, nodes, attestors).

A port is chosen below the kernel's ephemeral range, not by binding port 0. Binding port 0
picks from the ephemeral range, the one every outgoing connection's local port comes from, so
between the harness asking and the process binding, a connection to anvil or etcd could take
the very port ("Address already in use": an attestor of the TPM test once failed to start so).
A port below that range is never given to an outgoing connection. None is handed out twice by
one process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000
"""The lowest port handed out (well clear of the registered services' usual ports)."""
_handed: set[tuple[int, bool]] = set()
_random = random.Random()  # seeded from the OS: two processes do not walk the same ports


def _range() -> tuple[int, int]:
    """Ports to choose from: from ``_LOWEST`` up to just below the ephemeral range (Linux's
    default starts at 32768); the whole unprivileged range where that cannot be read."""
    try:
        ephemeral_low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 1024, 65535
    if ephemeral_low - 1 - _LOWEST < 1000:  # an unusual system: little room below
        return 1024, 65535
    return _LOWEST, ephemeral_low - 1


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A TCP (or, with ``udp``, a UDP) port free on ``host`` at the time of asking."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    low, high = _range()
    for _ in range(500):
        port = _random.randint(low, high)
        if (port, udp) in _handed:
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:  # in use (or lingering in TIME_WAIT): another
                continue
        _handed.add((port, udp))
        return port
    with socket.socket(socket.AF_INET, kind) as s:  # nothing free below: the kernel's choice
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free on ``host`` at the time of asking (attestors' latency responders)."""
    return free_port(host, udp=True)
