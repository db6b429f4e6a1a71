"""A local devnet: a real anvil, the registry deployed, and one attestor process per example
site (``attestor run --config examples/<site>.toml``) publishing that site's proofs.

    redundancy-devnet [--port 8545] [--state-dir .devnet] [--api-port 8000] [--no-api] [--once]

Writes ``<state-dir>/deployment.json`` and the sites' keys, outboxes and logs under
``<state-dir>/sites/``; prints a status table once every site's first proofs have landed, and
then stakes a validator per site, selects a committee, relays the RTTs the attestors measured
(signed by their own keys), serves the REST API and dashboard (``redundancy-api``, log in
``<state-dir>/api.log``), and keeps everything running until Ctrl-C (``--once`` stops after
printing). Keys are made with a cheap KDF and funded from anvil's public development account:
local use only.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import FrameType

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.apiserver import ApiProcess, pick_port, start_api
from devnet.attestors import SiteProcess, start_sites, status_table, stop_sites, wait_fresh
from devnet.errors import DevnetError
from devnet.localchain import free_port, start_chain
from devnet.toolchain import PROJECT_ROOT
from devnet.world import EXAMPLE_FACILITIES
from redundancy.chain import connect
from redundancy.cli.verify_scores import table
from redundancy.deployment import Deployment, deploy
from redundancy.domains import facility_id
from redundancy.eip712 import Signer
from redundancy.errors import RedundancyError
from redundancy.keystore import load_account, read_passphrase
from redundancy.proofs import LatencyMeasurement
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient

FIRST_ROUND_TIMEOUT = 90.0
REPEAT_EVERY = 60
VENUE_TIMEOUT = 240


#: The example sites (their attestors' configs are ``examples/<name>.toml``).
EXAMPLE_SITES = EXAMPLE_FACILITIES
#: anvil development accounts that stake a validator on each example site's node (public keys:
#: local use only); the nodes themselves are named in the sites' configs.
VALIDATOR_ACCOUNTS = {"fra1": 4, "ams1": 5, "dal1": 6}
VALIDATOR_STAKE = 25 * 10**18
NODE_TIMEOUT = 60.0


def example_node(site: str) -> str:
    """The validator node address an example site's attestor attests (first [[hardware.nodes]])."""
    with (PROJECT_ROOT / "examples" / f"{site}.toml").open("rb") as fh:
        return str(tomllib.load(fh)["hardware"]["nodes"][0]["address"])


def form_committee(
    w3: Web3, deployment: Deployment, owner: LocalAccount, dev_keys: list[str]
) -> None:
    """Stake a validator on each site's attested node, select the committee, print its scores."""
    registry = RegistryClient(w3, deployment.registry, owner)
    selector = SelectorClient(w3, deployment.selector, owner)
    for site in EXAMPLE_SITES:
        node = example_node(site.name)
        deadline = time.monotonic() + NODE_TIMEOUT
        while registry.node_info(node).facility_id != site.facility_id:
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"{site.name}'s attestor did not attest node {node} in {NODE_TIMEOUT:.0f} s"
                )
            time.sleep(0.5)
        operator = Account.from_key(dev_keys[VALIDATOR_ACCOUNTS[site.name]])
        registry.register_validator(site.facility_id, node, VALIDATOR_STAKE, sender=operator)
    selector.select_committee(sender=owner)
    committee = selector.current_committee()
    print(
        f"\ncommittee of epoch {committee.epoch}: {len(committee.members)} validators, "
        f"{VALIDATOR_STAKE // 10**18} ETH each, one per site"
    )
    print(table(selector.current_scores(), selector.current_class().name.lower()))


def relay_rtts(
    w3: Web3, deployment: Deployment, owner: LocalAccount, sites: list[SiteProcess], state_dir: Path
) -> int:
    """Put the RTTs each attestor measured (from its /metrics) on-chain as LatencyMeasurements
    signed with that attestor's own key (the devnet made the keystores, so it can open them)."""
    registry = RegistryClient(w3, deployment.registry, owner)
    selector = SelectorClient(w3, deployment.selector, owner)
    ds = registry.domain_separator()
    now = int(w3.eth.get_block("latest")["timestamp"])
    count = 0
    for site in sites:
        keys = state_dir / "sites" / site.name / "keys"
        account = load_account(keys / "attestor-key.json", read_passphrase(keys / "password", "_"))
        signer = Signer(bytes(account.key))
        for peer, rtt_us in sorted(site.peer_rtts().items()):
            m = LatencyMeasurement(facility_id(site.name), facility_id(peer), rtt_us, now)
            selector.report_latency(ds, m, signer.sign(ds, m), sender=owner)
            count += 1
    return count


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
        ",".join(s.name for s in EXAMPLE_SITES),
    ]
    if once:
        command.append("--once")
    print(
        "\nstarting the venue: an etcd member, validator node and gateway per site ...", flush=True
    )
    return subprocess.Popen(command)


def run(
    port: int, state_dir: Path, once: bool, api_port: int | None = 0, venue: bool = True
) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    chain = start_chain("anvil", port=port, block_time=1)
    sites: list[SiteProcess] = []
    api: ApiProcess | None = None
    venue_proc: subprocess.Popen[bytes] | None = None
    try:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        deployment = deploy(w3, owner)
        deployment_file = state_dir / "deployment.json"
        deployment.write(deployment_file)
        registry = RegistryClient(w3, deployment.registry, owner)
        print(f"anvil            {chain.rpc_url} (chain id {chain.chain_id}, 1 s blocks)")
        print(f"registry         {deployment.registry} (block {deployment.deploy_block})")
        print(f"deployment file  {deployment_file}")
        names = [site.name for site in EXAMPLE_SITES]
        sites = start_sites(names, chain.rpc_url, registry, owner, deployment_file, state_dir)
        print(
            f"\nstarted {len(sites)} attestors (attestor run --config examples/<site>.toml; "
            f"logs in {state_dir / 'sites'}/<site>/attestor.log); waiting for their proofs ..."
        )
        fresh = wait_fresh(registry, sites, timeout=FIRST_ROUND_TIMEOUT)
        print("\n" + "\n".join(status_table(registry, sites)))
        if fresh:
            form_committee(w3, deployment, owner, chain.dev_keys)
            relayed = relay_rtts(w3, deployment, owner, sites, state_dir)
            print(f"relayed {relayed} measured RTTs on-chain, each signed by its site's attestor")
            args = f"--deployment {deployment_file} --rpc-url {chain.rpc_url}"
            print("\nverify it yourself, from the RPC and the deployment file alone:")
            print(f"  .venv/bin/redundancy-verify-scores {args}")
            print(f"  .venv/bin/redundancy-verify-attestation {args} --facility fra1")
        if api_port is not None:
            api = start_api(
                deployment_file, chain.rpc_url, pick_port(api_port), state_dir / "api.log"
            )
            print(f"\nAPI              {api.url}/docs")
            print(f"dashboard        {api.url}/")
        if fresh and venue:
            venue_proc = start_venue(deployment_file, chain.rpc_url, state_dir, once)
        if once:
            if venue_proc is not None:
                try:
                    venue_code = venue_proc.wait(timeout=VENUE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise DevnetError(
                        f"the venue did not finish within {VENUE_TIMEOUT} s"
                    ) from None
                if venue_code != 0:
                    return venue_code
            return 0 if fresh else 1
        print(
            f"\nattestors heartbeat every 10 s; the table repeats every {REPEAT_EVERY} s. "
            "Ctrl-C stops the venue, the API, the attestors and the chain."
        )
        stop = False

        def _stop(_sig: int, _frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        next_table = time.monotonic() + REPEAT_EVERY
        while not stop and chain.process.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_table:
                next_table += REPEAT_EVERY
                print(f"\n{time.strftime('%H:%M:%S')}")
                print("\n".join(status_table(registry, sites)))
        return 0
    finally:
        if venue_proc is not None and venue_proc.poll() is None:
            venue_proc.terminate()
            venue_proc.wait(timeout=30)
        if api is not None:
            api.stop()
        if sites:
            codes = stop_sites(sites)
            print(f"\nattestors stopped (exit codes {', '.join(map(str, codes))})")
        chain.stop()


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
