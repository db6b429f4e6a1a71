"""The nemesis: faults injected into a running venue on a schedule, and healed.

Every fault has a kind, a family (what the campaign reports it under), a start (seconds into
the order flow), a duration and a target, drawn from a seeded generator so that a run can be
replayed from its seed. Targets named ``leader`` and ``follower`` are resolved when the fault
strikes (whichever member leads then).

partition  ``partition-site`` (one site cut off, both ways), ``partition-leader`` (the leader's
           site cut off), ``split`` (the sites in a minority and a majority, the leader on a
           random side), ``one-way`` (a site's outbound links cut, inbound intact, or a single
           directed link), ``slow-link`` (a site's links gain extra delay; nothing is cut)
pause      ``pause-member`` (SIGSTOP the leader's or a follower's etcd member for longer than
           the election timeout, then SIGCONT), ``pause-gateway``, ``pause-node``
kill       ``kill-site`` (SIGKILL a site's member, node and gateway; restart them later),
           ``replace-member`` (remove a member, wipe its data, add it back, start it empty)
clock      ``clock-jump`` (an attestor's wall clock jumps by minutes to hours, libfaketime)

Partition faults need the sites in namespaces (``devnet.fabric``); on loopback they are not
scheduled.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from devnet.checker import Window
from devnet.etcdcluster import EtcdCluster
from devnet.fabric import Fabric
from devnet.nodes import Sites

FAMILIES = {
    "partition-site": "partition",
    "partition-leader": "partition",
    "split": "partition",
    "one-way": "partition",
    "slow-link": "partition",
    "pause-member": "pause",
    "pause-gateway": "pause",
    "pause-node": "pause",
    "kill-site": "kill",
    "replace-member": "kill",
    "clock-jump": "clock",
}
NEEDS_NAMESPACES = {k for k, family in FAMILIES.items() if family == "partition"}


@dataclass
class Fault:
    kind: str
    at: float
    """Seconds after the flow starts."""
    duration: float
    target: str
    """``leader``, ``follower``, ``any`` or a site; resolved when the fault strikes."""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILIES[self.kind]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def draw(kind: str, rng: random.Random, election_s: float) -> Fault:
    """A fault of ``kind`` with random timing and target."""
    at = rng.uniform(1.5, 2.5)
    if kind in ("partition-site", "partition-leader", "split"):
        target = "leader" if kind == "partition-leader" else rng.choice(["leader", "any"])
        return Fault(kind, at, rng.uniform(2.0, 6.0), target)
    if kind == "one-way":
        scope = rng.choice(["outbound", "link"])
        target = rng.choice(["leader", "any"])
        return Fault(kind, at, rng.uniform(2.0, 6.0), target, {"scope": scope})
    if kind == "slow-link":
        extra = rng.randrange(20_000, 200_001, 1000)
        target = rng.choice(["leader", "any"])
        return Fault(kind, at, rng.uniform(2.0, 5.0), target, {"extra_us": extra})
    if kind.startswith("pause-"):
        low = max(2 * election_s, 1.0)  # always longer than the election timeout
        duration = rng.uniform(low, 5.0 + 2 * election_s)  # often past the 3 s write deadline
        target = rng.choice(["leader", "follower"]) if kind == "pause-member" else "any"
        return Fault(kind, at, duration, target)
    if kind == "kill-site":
        return Fault(kind, at, rng.uniform(1.0, 4.0), rng.choice(["leader", "any"]))
    if kind == "replace-member":
        return Fault(kind, at, 0.0, rng.choice(["leader", "follower"]))
    if kind == "clock-jump":
        jump = rng.choice([-1, 1]) * rng.randrange(600, 7201, 60)
        # long enough for the attestor to sign (and publish) at least one heartbeat meanwhile
        return Fault(kind, at, rng.uniform(6.0, 12.0), "any", {"jump_s": jump})
    raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAMILIES)})")


@dataclass
class Struck:
    """What a fault did when it struck: the site it hit, when, and who it cut off."""

    fault: Fault
    site: str
    start: float
    """When the nemesis began to strike (outages are measured from here)."""
    end: float = 0.0
    """When the heal was done."""
    minority: list[str] = field(default_factory=list)
    detail: str = ""
    struck: float = 0.0
    """When the fault was wholly in force (a partition: every one of its links cut)."""
    healing: float = 0.0
    """When the heal began (a partition: before its first link was restored)."""

    def window(self) -> Window | None:
        """The stretch in which ``minority`` was surely cut off from a quorum: from the last
        link cut to the first restored. Striking and healing take time (a control message to
        a relay per link end, slow on a loaded machine): an ack while the cut is still being
        laid, or already being lifted, is no split brain."""
        if not self.minority:
            return None
        return Window(
            self.fault.kind, self.struck or self.start, self.healing or self.end, self.minority
        )


class Nemesis:
    """Strikes and heals faults on one venue. ``clock(site, offset_s)`` sets an attestor's
    clock offset (None: no attestors, clock faults are not available)."""

    def __init__(
        self,
        fabric: Fabric,
        cluster: EtcdCluster,
        sites: Sites,
        rng: random.Random,
        clock: Callable[[str, int], None] | None = None,
    ) -> None:
        self.fabric, self.cluster, self.sites, self.rng = fabric, cluster, sites, rng
        self.clock = clock

    def _site(self, target: str) -> str:
        names = list(self.fabric.sites)
        if target == "leader":
            return self.cluster.leader()
        if target == "follower":
            leader = self.cluster.leader()
            return self.rng.choice([n for n in names if n != leader])
        if target == "any":
            return self.rng.choice(names)
        return target

    def strike(self, fault: Fault) -> Struck:
        site = self._site(fault.target)
        struck = Struck(fault, site, time.monotonic())
        fabric, kind = self.fabric, fault.kind
        if kind in ("partition-site", "partition-leader"):
            fabric.isolate([site])
        elif kind == "split":
            others = [s for s in fabric.sites if s != site]
            self.rng.shuffle(others)
            size = len(fabric.sites) // 2  # the minority
            group = [site, *others[: size - 1]] if self.rng.random() < 0.5 else others[:size]
            fabric.isolate(group)
            struck.detail = f"minority {sorted(group)}"
        elif kind == "one-way":
            if fault.params.get("scope") == "outbound":
                others = [other for other in fabric.sites if other != site]
                fabric.set_links([(site, other, None, True) for other in others])
                struck.detail = f"{site} -> * cut"
            else:
                other = self.rng.choice([s for s in fabric.sites if s != site])
                fabric.cut(site, other)
                struck.detail = f"{site} -> {other} cut"
        elif kind == "slow-link":
            extra = int(fault.params["extra_us"])
            fabric.set_links(
                [
                    (a, b, fabric.matrix.one_way_us[a, b] + extra, None)
                    for other in fabric.sites
                    if other != site
                    for a, b in ((site, other), (other, site))
                ]
            )
            struck.detail = f"+{extra / 1000:.0f} ms each way on {site}'s links"
        elif kind == "pause-member":
            struck.detail = f"({fault.target})"
            self.cluster.pause(site)
        elif kind == "pause-gateway":
            self._signal(site, "gateway", stop=True)
        elif kind == "pause-node":
            self._signal(site, "node", stop=True)
        elif kind == "kill-site":
            self.sites.kill_site(site)
        elif kind == "replace-member":
            struck.detail = f"({fault.target})"
            self.cluster.replace(site)
        elif kind == "clock-jump":
            if self.clock is None:
                raise ValueError("clock faults need attestors")
            self.clock(site, int(fault.params["jump_s"]))
        struck.minority = [s for s in fabric.sites if not fabric.quorum_side(s)]
        struck.struck = time.monotonic()
        return struck

    def heal(self, struck: Struck) -> None:
        kind, site = struck.fault.kind, struck.site
        struck.healing = time.monotonic()
        if struck.fault.family == "partition":
            self.fabric.heal()
        elif kind == "pause-member":
            self.cluster.resume(site)
        elif kind == "pause-gateway":
            self._signal(site, "gateway", stop=False)
        elif kind == "pause-node":
            self._signal(site, "node", stop=False)
        elif kind == "kill-site":
            self.cluster.restart(site)
            self.sites.start_node(self.sites.site(site))
            self.sites.start_gateway(self.sites.site(site))
        elif kind == "clock-jump" and self.clock is not None:
            self.clock(site, 0)
        struck.end = time.monotonic()

    def _signal(self, site: str, role: str, stop: bool) -> None:
        proc = getattr(self.sites.site(site), role)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGSTOP if stop else signal.SIGCONT)
