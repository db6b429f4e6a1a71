"""Run the venue on a local dev chain: an etcd member, a validator node and a gateway per site,
a light order flow through every gateway, and settlement batches committed on-chain by the
committee's nodes.

    validator-venue --deployment .devnet/deployment.json --rpc-url URL --sites fra1,ams1,dal1
                    [--state-dir .devnet/venue] [--orders 600] [--once]

For local development chains only: each committee node signs with anvil's public development key
of its node address (the keys production nodes read from keystores), and each site's node pays
gas from another development account. Prints one line per step; runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account

from devnet.etcdcluster import start_cluster
from devnet.flow import order_flow
from devnet.http import http_json
from devnet.localchain import LOCAL_CHAIN_KINDS, dev_keys
from devnet.nodes import make_sites
from devnet.signals import run_until_signalled
from redundancy.chain import connect
from redundancy.deployment import Deployment
from redundancy.domains import facility_id
from redundancy.errors import RedundancyError
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient
from validator.engine.errors import ValidatorError

#: development accounts that pay each site's gas (the demo runs anvil with 20 accounts)
SUBMITTER_ACCOUNTS = (4, 5, 6, 14, 15)
BATCH_TIMEOUT = 90.0
#: Where (in the state dir) the running venue lists its nodes' URLs, for the API's /venue.
VENUE_FILE = "nodes.json"
#: How long a refused (503) order batch is retried while the venue starts.
RETRY_REFUSED_FOR = 30.0


class VenueError(ValidatorError):
    """Raised when the dev venue cannot start (not a dev chain, no committee, unknown node key)."""


def chain_settings(rpc_url: str, dep: Deployment, sites: list[str]) -> dict[str, dict[str, str]]:
    """Per site: the contracts, the committee node's dev key, and a dev account that pays gas."""
    w3 = connect(rpc_url)
    if w3.eth.chain_id not in LOCAL_CHAIN_KINDS:
        raise VenueError(
            "validator-venue runs on a local development chain (anvil, chain id 31337, or "
            f"ganache, 1337), not chain {w3.eth.chain_id}"
        )
    registry = RegistryClient(w3, dep.registry)
    committee = SelectorClient(w3, dep.selector).current_committee()
    if committee.epoch == 0:
        raise VenueError("no committee has been selected yet")
    keys = {Account.from_key(k).address: k for k in dev_keys("anvil", 20)}
    by_facility = {
        registry.validator_info(m).facility_id: registry.validator_info(m).node
        for m in committee.members
    }
    out = {}
    for i, name in enumerate(sites):
        node = by_facility.get(facility_id(name))
        if node is None or node not in keys:
            raise VenueError(f"site {name} has no committee node with a development key")
        out[name] = {
            "rpc_url": rpc_url,
            "settlement": dep.settlement,
            "selector": dep.selector,
            "registry": dep.registry,
            "dev_node_key": keys[node],
            "dev_submitter_key": dev_keys("anvil", 20)[
                SUBMITTER_ACCOUNTS[i % len(SUBMITTER_ACCOUNTS)]
            ],
        }
    return out


def send_batch(site: str, url: str, orders: list[Any]) -> None:
    """POST a batch of orders; a 503 (refused: never committed, safe to retry with the same
    client order ids, e.g. while a member is still starting) is retried until
    ``RETRY_REFUSED_FOR`` seconds have passed; any other answer but 200 is an error."""
    deadline = time.monotonic() + RETRY_REFUSED_FOR
    while True:
        code, body = http_json(url, orders, timeout=10)
        if code == 200:
            return
        if code != 503 or time.monotonic() > deadline:
            raise VenueError(f"gateway {site} answered {code}: {body}")
        time.sleep(1.0)


def run(
    deployment: Path, rpc_url: str, sites: list[str], state_dir: Path, orders: int, once: bool
) -> int:
    dep = Deployment.read(deployment)
    chains = chain_settings(rpc_url, dep, sites)
    state_dir.mkdir(parents=True, exist_ok=True)
    with start_cluster(sites, state_dir / "etcd") as cluster:
        venue = make_sites(
            cluster, state_dir / "nodes", chain=chains, snapshot_every=4, batch_every=2
        )
        try:
            print(
                f"venue: {len(sites)} etcd members, {len(sites)} validator nodes and gateways",
                flush=True,
            )
            for s in venue.sites:
                print(f"  {s.name}: gateway {s.gateway_url}/orders, node {s.node_url}", flush=True)
            nodes = [{"site": s.name, "url": s.node_url} for s in venue.sites]
            (state_dir / VENUE_FILE).write_text(json.dumps(nodes, indent=2) + "\n")
            flow = order_flow(orders, 11)
            for k in range(0, len(flow), 50):
                site = venue.sites[(k // 50) % len(venue.sites)]
                send_batch(site.name, site.gateway_url + "/orders/batch", flow[k : k + 50])
            print(
                f"venue: {len(flow)} orders acknowledged through all {len(sites)} gateways",
                flush=True,
            )
            ledger = SettlementClient(connect(rpc_url), dep.settlement)
            deadline = time.monotonic() + BATCH_TIMEOUT
            while ledger.last_committed()[2] == 0:
                if time.monotonic() > deadline:
                    raise VenueError(f"no settlement batch committed within {BATCH_TIMEOUT:.0f} s")
                time.sleep(0.5)
            seq, root, count = ledger.last_committed()
            print(
                f"venue: {count} settlement batch(es) committed on-chain by the committee's nodes, "
                f"log sequences 1-{seq}, state root 0x{root.hex()[:16]}...",
                flush=True,
            )
            if not once:
                run_until_signalled()
            return 0
        finally:
            (state_dir / VENUE_FILE).unlink(missing_ok=True)
            venue.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="validator-venue", description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", type=Path, required=True)
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument(
        "--sites", required=True, help="comma-separated site names (one etcd member each)"
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet/venue"))
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument(
        "--once", action="store_true", help="stop after the first batch is committed"
    )
    args = parser.parse_args(argv)
    try:
        return run(
            args.deployment,
            args.rpc_url,
            args.sites.split(","),
            args.state_dir,
            args.orders,
            args.once,
        )
    except (RedundancyError, ValidatorError, OSError) as exc:
        print(f"validator-venue: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
