"""Sites on one machine, for tests, the failover drill, the fault campaign and the demo: per site
an etcd member (from ``etcdcluster``), a validator node process and a gateway process, on
loopback or, placed by the member's ``Placement``, in the site's own network namespace.
``kill_site`` is SIGKILL to all three: a site losing power.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet.etcdcluster import EtcdCluster
from devnet.http import http_json
from devnet.placement import GATEWAY_PORT, NODE_PORT, Placement
from devnet.ports import free_port


@dataclass
class Site:
    name: str
    config: Path
    node_port: int
    gateway_port: int
    node: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None
    placement: Placement | None = None

    @property
    def place(self) -> Placement:
        return self.placement or Placement(self.name)

    @property
    def node_url(self) -> str:
        """The node's read API as its own site (and the harness) reaches it."""
        return f"http://{self.place.host}:{self.node_port}"

    @property
    def gateway_url(self) -> str:
        """The gateway as its own site (and the harness) reaches it."""
        return f"http://{self.place.host}:{self.gateway_port}"

    def gateway_url_from(self, site: str) -> str:
        """The gateway as site ``site`` reaches it (through its relay when it is elsewhere)."""
        return f"http://{self.place.seen_from(site)}:{self.gateway_port}"

    def node_url_from(self, site: str) -> str:
        return f"http://{self.place.seen_from(site)}:{self.node_port}"


@dataclass
class Sites:
    cluster: EtcdCluster
    root: Path
    sites: list[Site] = field(default_factory=list)

    def _spawn(self, site: Site, role: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{site.name}-{role}.log", "ab")  # noqa: SIM115 - owned by the child
        cmd = [sys.executable, "-m", "validator.node", role, "--config", str(site.config)]
        return subprocess.Popen(site.place.command(cmd), stdout=log, stderr=log)

    def start_node(self, site: Site) -> None:
        site.node = self._spawn(site, "run")

    def start_gateway(self, site: Site) -> None:
        site.gateway = self._spawn(site, "gateway")

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def kill_node(self, name: str) -> None:
        site = self.site(name)
        _kill(site.node)
        site.node = None

    def kill_gateway(self, name: str) -> None:
        site = self.site(name)
        _kill(site.gateway)
        site.gateway = None

    def kill_site(self, name: str) -> None:
        """SIGKILL the site's etcd member, node and gateway."""
        site = self.site(name)
        self.cluster.kill(name)
        _kill(site.node)
        _kill(site.gateway)
        site.node = site.gateway = None

    def wait_up(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for s in self.sites:
            for url, proc in ((s.node_url, s.node), (s.gateway_url, s.gateway)):
                while proc is not None:
                    try:
                        http_json(url + "/health", timeout=0.5)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{url} did not come up") from None
                        time.sleep(0.05)

    def stop(self) -> None:
        for s in self.sites:
            for p in (s.node, s.gateway):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGCONT)  # a paused process would not see SIGTERM
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            s.node = s.gateway = None


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def write_config(path: Path, values: dict[str, Any]) -> None:
    """A flat TOML file plus optional tables (``[chain]``, ``[site]``: values that are dicts)."""

    def fmt(v: Any) -> str:
        return json.dumps(str(v) if isinstance(v, Path) else v)

    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    lines = [f"{k} = {fmt(v)}" for k, v in values.items() if k not in tables]
    for name, table in tables.items():
        if table:
            lines.append(f"[{name}]")
            lines += [f"{k} = {fmt(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")


ONE_HOST_PIPELINE_MIN = 64
"""``pipeline_min_messages`` for sites whose etcd members share a host or a LAN: a commit there
costs CPU, not distance, and a second chunk write for a message or two only makes more, slower
transactions (docs/validator-nodes.md, "A second write only for a worthwhile chunk")."""


def make_sites(
    cluster: EtcdCluster,
    root: Path,
    gateways: bool = True,
    chain: dict[str, dict[str, str]] | None = None,
    nearest: Callable[[str], list[str]] | None = None,
    site_watch: dict[str, dict[str, Any]] | None = None,
    only: Sequence[str] | None = None,
    **overrides: Any,
) -> Sites:
    """One node (and gateway) per etcd member, each preferring its own member, then the others
    in ``nearest(site)`` order (default: cluster order); started. A member with a placement puts
    its site's node and gateway in the same place. ``site_watch`` gives each site's ``[site]`` table
    (the site watch: its UPS, what it reacts to). ``only``: the members that get a site (the
    others, say a standby not yet in the cluster, get none)."""
    root.mkdir(parents=True, exist_ok=True)
    sites = Sites(cluster, root)
    members = [m for m in cluster.members if only is None or m.name in only]
    names = [m.name for m in members]
    planned = {}
    for member in members:
        place = member.placement
        fixed = place is not None and place.fixed_ports
        planned[member.name] = Site(
            member.name,
            root / f"{member.name}.toml",
            NODE_PORT if fixed else free_port(),
            GATEWAY_PORT if fixed else free_port(),
            placement=place,
        )
    for member in members:
        others = nearest(member.name) if nearest else [n for n in names if n != member.name]
        site = planned[member.name]
        values: dict[str, Any] = {
            "peers": [planned[o].node_url_from(member.name) for o in others],
            "node_id": member.name,
            "etcd_endpoints": [
                member.client_url,
                *(cluster.member(o).client_url_from(member.name) for o in others),
            ],
            "committee": names,
            "data_dir": root / member.name,
            "host": site.place.host,
            "node_port": site.node_port,
            "gateway_port": site.gateway_port,
            "pipeline_min_messages": ONE_HOST_PIPELINE_MIN,  # distance: gateway_tuning's 1
            **overrides,
        }
        if chain is not None:
            values["chain"] = chain[member.name]
        if site_watch is not None and member.name in site_watch:
            values["site"] = site_watch[member.name]
        write_config(site.config, values)
        sites.sites.append(site)
    try:
        for s in sites.sites:
            sites.start_node(s)
            if gateways:
                sites.start_gateway(s)
        # generous: on a loaded machine a site's two processes can take long to import and bind
        sites.wait_up(timeout=60.0)
    except BaseException:  # one did not come up: stop the ones that did, leave nothing behind
        sites.stop()
        raise
    return sites
