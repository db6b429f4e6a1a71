"""Where one site's processes run, and how the others reach them.

On loopback (the default) every site is 127.0.0.1 with ports of its own. As separate hosts
(``devnet.netns``) a site's processes run in its namespace, bind its real address on fixed
ports, and every other site reaches them at its virtual address (through its own relay), while
the harness reaches them at the real address from the observer's seat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Fixed ports of a site's services when it has a namespace (its own port space) to itself.
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
NODE_PORT = 8101
GATEWAY_PORT = 8201
ATTESTOR_HTTP_PORT = 9400
ATTESTOR_LATENCY_PORT = 7400  # UDP
ECHO_PORT = 7007
TCP_SERVICE_PORTS = (ETCD_CLIENT_PORT, ETCD_PEER_PORT, NODE_PORT, GATEWAY_PORT, ATTESTOR_HTTP_PORT)


@dataclass(frozen=True)
class Placement:
    site: str
    host: str = "127.0.0.1"
    """The address the site's processes bind; the harness reaches them there."""
    advertise: str = "127.0.0.1"
    """The address every other site reaches them at."""
    prefix: tuple[str, ...] = ()
    """Command prefix that runs a program in the site's network namespace."""
    fixed_ports: bool = False
    """Whether the site's services use the fixed ports above (a namespace of its own)."""

    def command(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]

    def seen_from(self, viewer: str) -> str:
        """The address site ``viewer`` uses to reach this site."""
        return self.host if viewer == self.site else self.advertise
