"""A local devnet: a real anvil, the registry deployed, and one attestor process per example
site (``attestor run --config examples/<site>.toml``) publishing that site's proofs.

    redundancy-devnet [--port 8545] [--state-dir .devnet] [--once]

Writes ``<state-dir>/deployment.json`` and the sites' keys, outboxes and logs under
``<state-dir>/sites/``; prints a status table once every site's first proofs have landed, and
keeps everything running until Ctrl-C (``--once`` stops after the first table). Keys are made
with a cheap KDF and funded from anvil's public development account: local use only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from eth_account import Account

from redundancy.chain import connect
from redundancy.deploy import deploy
from redundancy.devnet_sites import SiteProcess, start_sites, status_table, stop_sites, wait_fresh
from redundancy.errors import RedundancyError
from redundancy.localchain import free_port, start_chain
from redundancy.registry import RegistryClient

FIRST_ROUND_TIMEOUT = 90.0
REPEAT_EVERY = 60


@dataclass(frozen=True)
class ExampleSite:
    """An example facility with the facts its attestor probes (``examples/<name>.toml``)."""

    name: str
    grid: str
    metro: str
    country: str
    latitude_e6: int
    longitude_e6: int
    asn: str
    provider: str


EXAMPLE_SITES = (
    ExampleSite(
        "fra1", "entso-e/amprion", "frankfurt", "de", 50_110_922, 8_682_127, "as3320", "equinix"
    ),
    ExampleSite(
        "ams1",
        "entso-e/tennet-nl",
        "amsterdam",
        "nl",
        52_367_573,
        4_904_139,
        "as1136",
        "digital realty",
    ),
    ExampleSite("dal1", "ercot", "dallas", "us", 32_776_664, -96_796_988, "as7018", "cyrusone"),
)


def run(port: int, state_dir: Path, once: bool) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    chain = start_chain("anvil", port=port, block_time=1)
    sites: list[SiteProcess] = []
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
        if once:
            return 0 if fresh else 1
        print(
            f"\nattestors heartbeat every 10 s; the table repeats every {REPEAT_EVERY} s. "
            "Ctrl-C stops the attestors and the chain."
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
        if sites:
            codes = stop_sites(sites)
            print(f"\nattestors stopped (exit codes {', '.join(map(str, codes))})")
        chain.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-devnet", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="anvil port (default: a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet"), help="where files go")
    parser.add_argument("--once", action="store_true", help="stop after setting up and printing")
    args = parser.parse_args(argv)
    try:
        return run(args.port or free_port(), args.state_dir, args.once)
    except RedundancyError as exc:
        print(f"redundancy-devnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
