"""A local devnet: a real anvil, the registry deployed, and one attestor process per example
site (``attestor run --config examples/<site>.toml``) publishing that site's proofs.

    redundancy-devnet [--port 8545] [--state-dir .devnet] [--api-port 8000] [--no-api] [--once]

Writes ``<state-dir>/deployment.json`` and the sites' keys, outboxes and logs under
``<state-dir>/sites/``; prints a status table once every site's first proofs have landed, and
then stakes a validator per site, selects a committee, relays the RTTs the attestors measured
(from each attestor's ``/latency``: both ends of every exchange signed by their own attestor
keys), serves the REST API and dashboard (``redundancy-api``, log in
``<state-dir>/api.log``), and keeps everything running until Ctrl-C (``--once`` stops after
printing). Keys are made with a cheap KDF and funded from anvil's public development account:
local use only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from attestor.latency import SignedLatency
from devnet.apiserver import pick_port, start_api
from devnet.attestors import SiteProcess, start_sites, status_table, stop_sites, wait_fresh
from devnet.errors import DevnetError
from devnet.examples import example_sites
from devnet.localchain import LocalChain, start_chain
from devnet.ports import free_port
from devnet.signals import run_until_signalled
from redundancy.chain import connect
from redundancy.cli.verify_scores import table
from redundancy.deployment import Deployment, deploy
from redundancy.errors import ContractRevertError, RedundancyError
from redundancy.evidence import parse_document
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient

FIRST_ROUND_TIMEOUT = 90.0
REPEAT_EVERY = 60
VENUE_TIMEOUT = 240


#: anvil development accounts that stake a validator on each example site's node (public keys:
#: local use only); the nodes themselves are named in the sites' configs.
VALIDATOR_ACCOUNTS = {"fra1": 4, "ams1": 5, "dal1": 6}
VALIDATOR_STAKE = 25 * 10**18
NODE_TIMEOUT = 60.0
#: the most an attestor's /latency answer may be (one signed measurement per peer)
MAX_LATENCY_DOCUMENT = 256 * 1024


@dataclass
class Devnet:
    """The chain the devnet started and the contracts it deployed there."""

    chain: LocalChain
    w3: Web3
    owner: LocalAccount
    deployment: Deployment
    deployment_file: Path
    registry: RegistryClient


def deploy_contracts(chain: LocalChain, state_dir: Path) -> Devnet:
    """Deploy the contracts with anvil's first development account; write the deployment file."""
    w3 = connect(chain.rpc_url)
    owner = Account.from_key(chain.dev_keys[0])
    deployment = deploy(w3, owner)
    deployment_file = state_dir / "deployment.json"
    deployment.write(deployment_file)
    print(f"anvil            {chain.rpc_url} (chain id {chain.chain_id}, 1 s blocks)")
    print(f"registry         {deployment.registry} (block {deployment.deploy_block})")
    print(f"deployment file  {deployment_file}")
    registry = RegistryClient(w3, deployment.registry, owner)
    return Devnet(chain, w3, owner, deployment, deployment_file, registry)


def start_attestors(devnet: Devnet, state_dir: Path) -> list[SiteProcess]:
    """One attestor process per example site, run with its config as it is."""
    names = [site.name for site in example_sites()]
    sites = start_sites(
        names,
        devnet.chain.rpc_url,
        devnet.registry,
        devnet.owner,
        devnet.deployment_file,
        state_dir,
    )
    print(
        f"\nstarted {len(sites)} attestors (attestor run --config examples/<site>.toml; "
        f"logs in {state_dir / 'sites'}/<site>/attestor.log); waiting for their proofs ..."
    )
    return sites


def stop_attestors(sites: list[SiteProcess]) -> None:
    codes = stop_sites(sites)
    print(f"\nattestors stopped (exit codes {', '.join(map(str, codes))})")


def form_committee(
    w3: Web3, deployment: Deployment, owner: LocalAccount, dev_keys: list[str]
) -> None:
    """Stake a validator on each site's attested node, select the committee, print its scores."""
    registry = RegistryClient(w3, deployment.registry, owner)
    selector = SelectorClient(w3, deployment.selector, owner)
    node_keys = {a.address.lower(): a for a in map(Account.from_key, dev_keys)}
    for site in example_sites():
        node = site.node.address
        deadline = time.monotonic() + NODE_TIMEOUT
        while registry.node_info(node).facility_id != site.facility.facility_id:
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"{site.name}'s attestor did not attest node {node} in {NODE_TIMEOUT:.0f} s"
                )
            time.sleep(0.5)
        operator = Account.from_key(dev_keys[VALIDATOR_ACCOUNTS[site.name]])
        # the node key signs the binding that lets the operator register on it (the example
        # nodes' addresses are development accounts, so their keys are known here)
        registry.register_validator(
            site.facility.facility_id, node_keys[node.lower()], VALIDATOR_STAKE, sender=operator
        )
    selector.select_committee(sender=owner)
    committee = selector.current_committee()
    print(
        f"\ncommittee of epoch {committee.epoch}: {len(committee.members)} validators, "
        f"{VALIDATOR_STAKE // 10**18} ETH each, one per site"
    )
    print(table(selector.current_scores(), selector.current_class().name.lower()))


@dataclass(frozen=True)
class Relayed:
    """What relaying the attestors' signed measurements did."""

    accepted: int
    already_held: int
    refused: list[str]


def fetch_signed_latencies(latency_url: str) -> list[SignedLatency]:
    """An attestor's ``/latency``: the signed measurements it holds (parsed within bounds: its
    answer is hostile input). RedundancyError subclasses if unreachable or malformed."""
    try:
        reply = requests.get(latency_url, timeout=5)
        reply.raise_for_status()
    except requests.RequestException as exc:
        raise DevnetError(f"{latency_url}: {exc}") from None
    doc = parse_document(reply.content, max_bytes=MAX_LATENCY_DOCUMENT)
    if not isinstance(doc, dict) or not isinstance(doc.get("measurements"), list):
        raise DevnetError(f"{latency_url}: not a list of measurements")
    return [SignedLatency.from_json(entry) for entry in doc["measurements"]]


def relay_signed_latencies(
    selector: SelectorClient, domain_separator: bytes, latency_urls: list[str], sender: LocalAccount
) -> Relayed:
    """Relay every signed measurement the attestors hold to the selector, as anyone may: each
    end's own, signed by its own attestor key. One the selector already holds (the same or a
    newer report of that direction) is counted, not an error; any other refusal is named."""
    accepted, held, refused = 0, 0, []
    for url in latency_urls:
        for signed in fetch_signed_latencies(url):
            try:
                selector.report_latency(
                    domain_separator, signed.measurement, signed.signature, sender=sender
                )
                accepted += 1
            except ContractRevertError as exc:
                if exc.error_name == "SelectorMeasurementReplayed":
                    held += 1
                else:
                    refused.append(str(exc))
    return Relayed(accepted, held, refused)


def relay_rtts(
    w3: Web3, deployment: Deployment, owner: LocalAccount, sites: list[SiteProcess]
) -> Relayed:
    """Put the RTTs the attestors measured on-chain: each site serves, at ``/latency``, the
    EIP-712 measurements both ends of its exchanges signed with their own attestor keys; the
    devnet relays them (it holds no site's key)."""
    registry = RegistryClient(w3, deployment.registry, owner)
    selector = SelectorClient(w3, deployment.selector, owner)
    urls = [site.metrics_url.removesuffix("/metrics") + "/latency" for site in sites]
    return relay_signed_latencies(selector, registry.domain_separator(), urls, owner)


def set_up_committee(devnet: Devnet, sites: list[SiteProcess], state_dir: Path) -> None:
    """Once every site is fresh: the committee, the measured RTTs, and how to verify both."""
    chain = devnet.chain
    form_committee(devnet.w3, devnet.deployment, devnet.owner, chain.dev_keys)
    relayed = relay_rtts(devnet.w3, devnet.deployment, devnet.owner, sites)
    print(
        f"relayed {relayed.accepted} RTT measurements on-chain, each signed by the attestor of "
        "the end that measured it"
    )
    for problem in relayed.refused:
        print(f"  refused: {problem}")
    args = f"--deployment {devnet.deployment_file} --rpc-url {chain.rpc_url}"
    print("\nverify it yourself, from the RPC and the deployment file alone:")
    print(f"  .venv/bin/redundancy-verify-scores {args}")
    print(f"  .venv/bin/redundancy-verify-attestation {args} --facility fra1")


def start_venue(
    deployment_file: Path, rpc_url: str, state_dir: Path, once: bool
) -> subprocess.Popen[bytes]:
    """The venue (etcd member, node and gateway per site, an order flow, settlement batches),
    run by the validator package's own command: the core never imports it."""
    script = Path(sys.executable).parent / "validator-venue"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "devnet.venue"]
    command += [
        "--deployment",
        str(deployment_file),
        "--rpc-url",
        rpc_url,
        "--state-dir",
        str(state_dir / "venue"),
        "--sites",
        ",".join(site.name for site in example_sites()),
    ]
    if once:
        command.append("--once")
    print(
        "\nstarting the venue: an etcd member, validator node and gateway per site ...", flush=True
    )
    return subprocess.Popen(command)


def stop_venue(venue: subprocess.Popen[bytes]) -> None:
    if venue.poll() is None:
        venue.terminate()
        venue.wait(timeout=30)


def wait_venue(venue: subprocess.Popen[bytes]) -> int:
    """--once: the venue's exit code once it has committed its first batch and stopped."""
    try:
        return venue.wait(timeout=VENUE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DevnetError(f"the venue did not finish within {VENUE_TIMEOUT} s") from None


def keep_running(devnet: Devnet, sites: list[SiteProcess]) -> None:
    """Until Ctrl-C (or the chain exits): the status table again every ``REPEAT_EVERY`` s."""
    print(
        f"\nattestors heartbeat every 10 s; the table repeats every {REPEAT_EVERY} s. "
        "Ctrl-C stops the venue, the API, the attestors and the chain."
    )
    next_table = time.monotonic() + REPEAT_EVERY

    def step() -> bool:
        nonlocal next_table
        if devnet.chain.process.poll() is not None:
            return False
        if time.monotonic() >= next_table:
            next_table += REPEAT_EVERY
            print(f"\n{time.strftime('%H:%M:%S')}")
            print("\n".join(status_table(devnet.registry, sites)))
        return True

    run_until_signalled(step)


def run(
    port: int, state_dir: Path, once: bool, api_port: int | None = 0, venue: bool = True
) -> int:
    """Start everything, print, and keep it running (or, with ``once``, stop); stops what it
    started in reverse order on the way out: venue, API, attestors, chain."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as started:
        chain = start_chain("anvil", port=port, block_time=1)
        started.callback(chain.stop)
        devnet = deploy_contracts(chain, state_dir)
        sites = start_attestors(devnet, state_dir)
        started.callback(stop_attestors, sites)
        fresh = wait_fresh(devnet.registry, sites, timeout=FIRST_ROUND_TIMEOUT)
        print("\n" + "\n".join(status_table(devnet.registry, sites)))
        if fresh:
            set_up_committee(devnet, sites, state_dir)
        if api_port is not None:
            log = state_dir / "api.log"
            api = start_api(devnet.deployment_file, chain.rpc_url, pick_port(api_port), log)
            started.callback(api.stop)
            print(f"\nAPI              {api.url}/docs")
            print(f"dashboard        {api.url}/")
        venue_proc = None
        if fresh and venue:
            venue_proc = start_venue(devnet.deployment_file, chain.rpc_url, state_dir, once)
            started.callback(stop_venue, venue_proc)
        if once:
            if venue_proc is not None and (code := wait_venue(venue_proc)) != 0:
                return code
            return 0 if fresh else 1
        keep_running(devnet, sites)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-devnet", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="anvil port (default: a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet"), help="where files go")
    parser.add_argument("--once", action="store_true", help="stop after setting up and printing")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: 8000 if free)")
    parser.add_argument("--no-api", action="store_true", help="do not serve the API and dashboard")
    parser.add_argument(
        "--no-venue", action="store_true", help="do not start etcd, nodes, gateways"
    )
    args = parser.parse_args(argv)
    try:
        api_port = None if args.no_api else args.api_port
        return run(args.port or free_port(), args.state_dir, args.once, api_port, not args.no_venue)
    except RedundancyError as exc:
        print(f"redundancy-devnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
