"""An attestor at every site (in its namespace), on a wall clock the nemesis can move.

For the fault campaign's clock faults: a local anvil in the observer's seat with the contracts
deployed, one facility registered and funded per site, and one ``attestor run`` per site, each
under Debian's ``libfaketime`` whose offset file the nemesis rewrites (``offset``): the wall
clock jumps (an NTP step, a bad RTC) while the monotonic clock does not. The attestors measure
each other's round trips through the relays, so they see the emulated distance. The chain is
reached directly, not through the site's links: it stands for a public chain elsewhere.

``check(struck)`` says what went wrong around one clock fault: the attestor died; the registry
accepted one of its proofs from further in the future than the policy's skew, or already
expired; or no proof of it landed within ``LIVENESS`` seconds after its clock came back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak

from devnet.attestors import SiteProcess, fund, init_keys, stop_sites
from devnet.distance import facility
from devnet.fabric import Fabric
from devnet.localchain import LocalChain, start_chain
from devnet.nemesis import Struck
from devnet.netns import OBSERVER_ADDRESS
from devnet.placement import ATTESTOR_HTTP_PORT, ATTESTOR_LATENCY_PORT
from devnet.ports import free_port, free_udp_port
from redundancy.chain import connect
from redundancy.deployment import deploy
from redundancy.domains import facility_id
from redundancy.errors import RedundancyError
from redundancy.registry import RegistryClient

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
HEARTBEAT = 4
LIVENESS = 45.0
"""Seconds after a clock comes back within which the attestor must land a proof again."""


def faketime_missing() -> str | None:
    return None if FAKETIME.exists() else f"{FAKETIME} missing: apt-get install libfaketime"


def _toml(value: Any) -> str:
    return json.dumps(value)


def attestor_config(
    site: str, data: Path, rpc_url: str, deployment: Path, password: Path, http: str,
    latency: str, peers: list[dict[str, str]], allow: list[str],
) -> str:  # fmt: skip
    """An attestor config for ``site`` from its facts (``devnet.distance``)."""
    f = facility(site)
    peer_list = ", ".join(
        f"{{ facility = {_toml(p['facility'])}, address = {_toml(p['address'])} }}" for p in peers
    )
    node = Account.from_key(keccak(text=f"campaign-node:{site}")).address
    return "\n".join(
        [
            f"facility = {_toml(site)}",
            f"data_dir = {_toml(str(data / 'data'))}",
            "[chain]",
            f"rpc_url = {_toml(rpc_url)}",
            f"deployment = {_toml(str(deployment))}",
            "[keys]",
            f"dir = {_toml(str(data / 'keys'))}",
            f"password_file = {_toml(str(password))}",
            "[health]",
            f"heartbeat_interval = {HEARTBEAT}",
            "[power]",
            f"grid = {_toml(f.grid)}",
            "feeds = 2",
            "ups = true",
            "generator = true",
            "[geography]",
            f"latitude_e6 = {f.latitude_e6}",
            f"longitude_e6 = {f.longitude_e6}",
            f"country = {_toml(f.country)}",
            f"metro = {_toml(f.metro)}",
            "peer_retry_interval = 15",
            "[network]",
            f"asns = [{_toml(f.asn.upper())}]",
            "[provider]",
            f"name = {_toml(f.provider)}",
            "[[hardware.nodes]]",
            f"address = {_toml(node)}",
            'vendor = "dell"',
            'model = "poweredge r650"',
            'firmware = "2.19.1"',
            "[latency]",
            f"listen = {_toml(latency)}",
            f"peers = [{peer_list}]",
            f"allow = {_toml(allow)}",
            "[http]",
            f"listen = {_toml(http)}",
            "",
        ]
    )


class SiteAttestors:
    def __init__(self, fabric: Fabric, root: Path) -> None:
        self.fabric, self.root = fabric, root
        root.mkdir(parents=True, exist_ok=True)
        self.clock_files = {s: root / f"{s}.faketime" for s in fabric.sites}
        self.processes: list[SiteProcess] = []
        host = OBSERVER_ADDRESS if fabric.namespaced else "127.0.0.1"
        with fabric.observe():
            self.chain: LocalChain = start_chain("anvil", host=host)
            try:
                self._start()
            except BaseException:
                self.stop()
                raise

    def _start(self) -> None:
        fabric, root = self.fabric, self.root
        w3 = connect(self.chain.rpc_url)
        owner = Account.from_key(self.chain.dev_keys[0])
        dep = deploy(w3, owner)
        deployment = root / "deployment.json"
        dep.write(deployment)
        self.registry = RegistryClient(w3, dep.registry, owner)
        names = list(fabric.sites)
        keys = init_keys(names, root / "sites")
        for name in names:
            address, ca, _ = keys[name]
            self.registry.register_facility(facility_id(name), address, ca)
        fund(w3, owner, [keys[n][0] for n in names])
        placements = fabric.placements
        ports = {
            n: (ATTESTOR_HTTP_PORT, ATTESTOR_LATENCY_PORT)
            if fabric.namespaced
            else (free_port(), free_udp_port())
            for n in names
        }
        allow = sorted({a for p in placements.values() for a in (p.host, p.advertise)})
        for name in names:
            place = placements[name]
            data = root / "sites" / name
            peers = [
                {"facility": o, "address": f"{placements[o].seen_from(name)}:{ports[o][1]}"}
                for o in names
                if o != name
            ]
            config = data / "attestor.toml"
            config.write_text(
                attestor_config(
                    name, data, self.chain.rpc_url, deployment, keys[name][2],
                    f"{place.host}:{ports[name][0]}", f"{place.host}:{ports[name][1]}", peers,
                    allow,
                )
            )  # fmt: skip
            self.clock_files[name].write_text("+0\n")
            env = {
                **os.environ,
                "LD_PRELOAD": str(FAKETIME),
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_files[name]),
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
            log_path = data / "attestor.log"
            log_file = log_path.open("wb")
            cmd = place.command([sys.executable, "-m", "attestor", "run", "--config", str(config)])
            process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
            self.processes.append(
                SiteProcess(name, keys[name][0], *ports[name], log_path, process, log_file)
            )
        deadline = time.monotonic() + 120
        for site in self.processes:
            while self._landed(site) == 0:
                self._alive(site)
                if time.monotonic() > deadline:
                    raise RedundancyError(f"the attestor at {site.name} landed no proof")
                time.sleep(0.5)

    def _landed(self, site: SiteProcess, from_block: int = 0) -> int:
        return len(self.registry.accepted_proofs(from_block, attestor=site.attestor))

    def _alive(self, site: SiteProcess) -> None:
        if site.process.poll() is not None:
            raise RedundancyError(
                f"the attestor at {site.name} exited ({site.process.returncode}): {site.log_tail()}"
            )

    def site(self, name: str) -> SiteProcess:
        return next(s for s in self.processes if s.name == name)

    def offset(self, site: str, seconds: int) -> None:
        """Set ``site``'s attestor wall clock ``seconds`` away from the real one."""
        self.clock_files[site].write_text(f"{seconds:+d}\n")
        if seconds:
            self._struck_block = self.registry.w3.eth.block_number

    def reset(self) -> None:
        for path in self.clock_files.values():
            path.write_text("+0\n")

    def check(self, struck: Struck) -> tuple[list[str], dict[str, Any]] | None:
        """(problems, facts) around a clock fault: problems empty when none; None for other
        faults. Facts: the jump, proofs the registry refused meanwhile (by reason), proofs it
        accepted, and how long after the clock came back the next one landed."""
        if struck.fault.kind != "clock-jump":
            return None
        problems: list[str] = []
        facts: dict[str, Any] = {"jump_s": struck.fault.params["jump_s"]}
        site = self.site(struck.site)
        if site.process.poll() is not None:
            return [f"attestor at {site.name} exited ({site.process.returncode})"], facts
        with self.fabric.observe():
            w3 = self.registry.w3
            start = getattr(self, "_struck_block", 0)
            policy = self.registry.freshness_policy()
            deadline = time.monotonic() + LIVENESS
            healed = w3.eth.block_number
            back = time.monotonic()
            while True:
                after = [
                    p
                    for p in self.registry.accepted_proofs(healed, attestor=site.attestor)
                    if p.block > healed
                ]
                if after or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            if after:
                facts["landed_again_after_s"] = round(time.monotonic() - back, 1)
            else:
                problems.append(
                    f"attestor at {site.name} landed no proof within {LIVENESS:.0f} s after its "
                    f"clock came back ({struck.fault.params})"
                )
            refused: dict[str, int] = {}
            for event in self.registry.event_logs(
                "AttestationRejected", start, facilityId=facility_id(site.name)
            ):
                name = self.registry.errors.name_of(bytes(event["args"]["reason"]))
                refused[name] = refused.get(name, 0) + 1
            facts["refused"] = refused
            times: dict[int, int] = {}
            accepted = self.registry.accepted_proofs(start, attestor=site.attestor)
            facts["accepted"] = len(accepted)
            for proof in accepted:
                if proof.block not in times:
                    times[proof.block] = int(w3.eth.get_block(proof.block)["timestamp"])
                now = times[proof.block]
                latest = now + policy.max_lifetime[int(proof.kind)] + policy.max_future_skew
                if not now < proof.valid_until <= latest:
                    problems.append(
                        f"registry accepted {site.name}'s {proof.kind.name} proof "
                        f"#{proof.sequence} valid until {proof.valid_until} in a block at {now}"
                    )
        return problems, facts

    def stop(self) -> None:
        if self.processes:
            stop_sites(self.processes)
            self.processes = []
        self.chain.stop()
