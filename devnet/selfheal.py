"""The self-heal drill: a committee site dies, its heartbeat lapses, the registry marks it stale
on-chain, and a keeper's new committee lands; each step timed.

One run: a real anvil with one-second blocks, the contracts deployed, one real attestor per
example site (fra1, ams1, dal1) with a short heartbeat, a validator staked on each site's node, a
``redundancy-keeper`` process (which selects the first committee itself), then a SIGKILL of one
committee site's attestor at a random moment. Figures: kill to stale on-chain (the first block
whose timestamp passes the site's last heartbeat's expiry), stale to the new committee on-chain
(seconds and blocks), and kill to new committee beside the goal of two heartbeat intervals plus
three blocks.

Emulated on one machine (say so when quoting): the site's death is its attestor's SIGKILL (the
venue's etcd member, node and gateway are not part of this drill); the keeper watches over
loopback.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from devnet.attestors import start_sites, stop_sites, wait_fresh
from devnet.demo import NODE_TIMEOUT, VALIDATOR_ACCOUNTS, VALIDATOR_STAKE
from devnet.errors import DevnetError
from devnet.examples import example_sites
from devnet.localchain import start_chain
from redundancy.chain import connect
from redundancy.deployment import deploy
from redundancy.domains import Kind, facility_id
from redundancy.registry import RegistryClient
from redundancy.selector import GeographyPolicy, SelectorClient

BLOCK_SECONDS = 1
KEEPER_ACCOUNT = 9
#: a long minimum epoch: only the emergency rule can replace the committee during the drill
MIN_EPOCH_SECONDS = 3_600


def _wait(what: Any, timeout: float, message: str, step: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return time.time()
        time.sleep(step)
    raise DevnetError(message)


def run_self_heal(tmp: Path, rng: random.Random, heartbeat: int) -> dict[str, Any]:
    """One drill; its figures."""
    with start_chain("anvil", block_time=BLOCK_SECONDS) as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        deployment = deploy(w3, owner)
        deployment_file = tmp / "deployment.json"
        deployment.write(deployment_file)
        registry = RegistryClient(w3, deployment.registry, owner)
        selector = SelectorClient(w3, deployment.selector, owner)
        selector.set_geography_policy(GeographyPolicy(min_epoch_seconds=MIN_EPOCH_SECONDS))
        names = [site.name for site in example_sites()]
        sites = start_sites(
            names,
            chain.rpc_url,
            registry,
            owner,
            deployment_file,
            tmp,
            {"ATTESTOR_HEALTH__HEARTBEAT_INTERVAL": str(heartbeat)},
        )
        keeper: subprocess.Popen[bytes] | None = None
        try:
            if not wait_fresh(registry, sites, 180):
                raise DevnetError("the sites did not all turn fresh within 180 s")
            for site in example_sites():
                node = site.node.address
                _wait(
                    lambda n=node, f=site.facility.facility_id: (
                        registry.node_info(n).facility_id == f
                    ),
                    NODE_TIMEOUT,
                    f"{site.name}'s node was not attested",
                    0.5,
                )
                operator = Account.from_key(chain.dev_keys[VALIDATOR_ACCOUNTS[site.name]])
                # the node key signs the binding (the example nodes are development accounts)
                node_key = next(
                    a
                    for a in map(Account.from_key, chain.dev_keys)
                    if a.address.lower() == node.lower()
                )
                registry.register_validator(
                    site.facility.facility_id, node_key, VALIDATOR_STAKE, sender=operator
                )
            keeper_log = (tmp / "keeper.log").open("wb")
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
                "KEEPER_RPC_URL": chain.rpc_url,
                "KEEPER_SELECTOR": deployment.selector,
                "KEEPER_DEV_KEY": chain.dev_keys[KEEPER_ACCOUNT],
                "KEEPER_POLL_INTERVAL": "0.1",
            }
            keeper = subprocess.Popen(
                [sys.executable, "-m", "keeper"], stdout=keeper_log, stderr=keeper_log, env=env
            )
            _wait(lambda: selector.current_committee().epoch == 1, 60, "no first committee")
            first = selector.current_committee()
            validators = {registry.validator_info(m).facility_id: m for m in first.members}
            victim = rng.choice(names)
            # a random moment within one heartbeat interval
            time.sleep(rng.uniform(0, heartbeat))
            dying = next(s for s in sites if s.name == victim)
            killed_at = time.time()
            dying.process.send_signal(signal.SIGKILL)
            fid = facility_id(victim)
            stale_seen = _wait(
                lambda: registry.facility_status(fid).stale, 10 * heartbeat + 60, "never stale"
            )
            expiry = registry.facility(fid).valid_until[Kind.HEALTH]
            selected_seen = _wait(
                lambda: selector.current_committee().epoch == 2, 120, "no new committee"
            )
            (event,) = selector.event_logs("CommitteeSelected", epoch=2)
            selected_block = int(event["blockNumber"])
            selected_time = int(w3.eth.get_block(selected_block)["timestamp"])
            stale_block = next(
                n
                for n in range(selected_block, 0, -1)
                if int(w3.eth.get_block(n - 1)["timestamp"]) < expiry
            )
            emergency = selector.event_logs("EmergencySelection", epoch=2)
            new = selector.current_committee().members
            goal = 2 * heartbeat + 3 * BLOCK_SECONDS
            return {
                "victim": victim,
                "heartbeat_s": heartbeat,
                "kill_to_stale_s": round(stale_seen - killed_at, 3),
                "stale_to_selected_s": round(selected_seen - stale_seen, 3),
                "stale_to_selected_blocks": selected_block - stale_block,
                "stale_to_selected_chain_s": selected_time - expiry,
                "kill_to_selected_s": round(selected_seen - killed_at, 3),
                "goal_s": goal,
                "met": selected_seen - killed_at <= goal,
                "emergency": bool(emergency),
                "victim_removed": validators.get(fid) not in new,
                "new_committee_size": len(new),
            }
        finally:
            if keeper is not None:
                keeper.send_signal(signal.SIGTERM)
                try:
                    keeper.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    keeper.kill()
                    keeper.wait()
            stop_sites(sites)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians, worst cases and how many runs met the goal."""

    def ordered(key: str) -> list[float]:
        return sorted(float(r[key]) for r in runs)

    def pct(key: str, q: float) -> float:
        values = ordered(key)
        return values[min(len(values) - 1, int(q * len(values)))]

    return {
        "runs": len(runs),
        "kill_to_stale_median_s": pct("kill_to_stale_s", 0.5),
        "stale_to_selected_median_s": pct("stale_to_selected_s", 0.5),
        "stale_to_selected_blocks_max": max(int(r["stale_to_selected_blocks"]) for r in runs),
        "kill_to_selected_median_s": pct("kill_to_selected_s", 0.5),
        "kill_to_selected_p99_s": pct("kill_to_selected_s", 0.99),
        "goal_s": runs[0]["goal_s"],
        "met": sum(bool(r["met"]) for r in runs),
        "all_emergency": all(r["emergency"] for r in runs),
        "all_victims_removed": all(r["victim_removed"] for r in runs),
    }
