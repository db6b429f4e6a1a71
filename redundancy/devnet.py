"""A local devnet: a real anvil, the registry deployed, example sites registered and attested.

    redundancy-devnet [--port 8545] [--state-dir .devnet] [--api-port 8000] [--no-api] [--once]

Writes ``<state-dir>/deployment.json``, stakes a demo validator per site, selects a committee,
serves the REST API and dashboard (``redundancy-api``, log in ``<state-dir>/api.log``) and keeps
everything running until Ctrl-C (``--once`` stops after printing). The example sites sign with
anvil's public development keys: local use only.
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
from redundancy.committee import SelectorClient
from redundancy.deploy import deploy
from redundancy.devnet_api import ApiProcess, pick_port, start_api
from redundancy.devnet_committee import DemoSite, stake_committee
from redundancy.domains import Dimension, Kind, domain_id, facility_id
from redundancy.eip712 import Signer
from redundancy.errors import RedundancyError
from redundancy.evidence import canonical_json
from redundancy.localchain import free_port, start_chain
from redundancy.proofs import SignedProof, make_proof
from redundancy.registry import RegistryClient


@dataclass(frozen=True)
class ExampleSite:
    """An example facility with the facts its attestor would probe."""

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


def site_proofs(
    site: ExampleSite,
    signer: Signer,
    domain_sep: bytes,
    now: int,
    first_sequence: int,
    heartbeat_lifetime: int = 120,
) -> list[SignedProof]:
    """One signed proof of every facility-level kind for an example site."""
    fid = facility_id(site.name)
    facts: list[tuple[Kind, bytes, bytes, dict[str, object]]] = [
        (
            Kind.POWER,
            domain_id(Dimension.POWER, site.grid),
            bytes(32),
            {"grid": site.grid, "feeds": 2},
        ),
        (
            Kind.GEOGRAPHY,
            domain_id(Dimension.METRO, site.metro),
            domain_id(Dimension.COUNTRY, site.country),
            {"metro": site.metro, "country": site.country},
        ),
        (Kind.NETWORK, domain_id(Dimension.NETWORK, site.asn), bytes(32), {"asns": [site.asn]}),
        (
            Kind.PROVIDER,
            domain_id(Dimension.PROVIDER, site.provider),
            bytes(32),
            {"provider": site.provider},
        ),
        (Kind.HEALTH, bytes(32), bytes(32), {"load1Milli": 120, "diskFreePct": 71}),
    ]
    out = []
    for i, (kind, d1, d2, doc) in enumerate(facts):
        lifetime = heartbeat_lifetime if kind == Kind.HEALTH else 86_400
        geo = kind == Kind.GEOGRAPHY
        evidence = canonical_json(
            {"v": 1, "kind": kind.name.lower(), "facility": site.name, "observedAt": now, **doc}
        )
        out.append(
            make_proof(
                signer,
                domain_sep,
                facility_id=fid,
                kind=kind,
                evidence=evidence,
                issued_at=now,
                expires_at=now + lifetime,
                sequence=first_sequence + i,
                domain_id=d1,
                secondary_domain_id=d2,
                latitude_e6=site.latitude_e6 if geo else 0,
                longitude_e6=site.longitude_e6 if geo else 0,
            )
        )
    return out


def run(port: int, state_dir: Path, once: bool, api_port: int | None = 0) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    chain = start_chain("anvil", port=port, block_time=1)
    api: ApiProcess | None = None
    try:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        deployment = deploy(w3, owner)
        deployment.write(state_dir / "deployment.json")
        registry = RegistryClient(w3, deployment.registry, owner)
        print(f"anvil            {chain.rpc_url} (chain id {chain.chain_id}, 1 s blocks)")
        print(f"registry         {deployment.registry} (block {deployment.deploy_block})")
        print(f"deployment file  {state_dir / 'deployment.json'}")
        now = int(w3.eth.get_block("latest")["timestamp"])
        batch: list[SignedProof] = []
        for i, site in enumerate(EXAMPLE_SITES):
            signer = Signer(bytes.fromhex(chain.dev_keys[1 + i][2:]))
            registry.register_facility(facility_id(site.name), signer.address)
            batch += site_proofs(site, signer, registry.domain_separator(), now, first_sequence=1)
        result = registry.submit_attestations(batch)
        print(
            f"\npublished {len(result.accepted)} signed site proofs in one transaction "
            f"({result.gas_used:,} gas, {result.gas_used // len(batch):,} per proof)"
        )
        print(f"\n{'site':6} {'attestor':44} {'stale':6} reasons")
        for site in EXAMPLE_SITES:
            fid = facility_id(site.name)
            status = registry.facility_status(fid)
            attestor = registry.facility(fid).attestor
            print(
                f"{site.name:6} {attestor:44} {str(status.stale).lower():6} "
                f"{', '.join(status.reasons()) or '-'}"
            )
        demo = [
            DemoSite(s.name, facility_id(s.name), Signer(bytes.fromhex(chain.dev_keys[1 + i][2:])))
            for i, s in enumerate(EXAMPLE_SITES)
        ]
        selector = SelectorClient(w3, deployment.selector, owner)
        staked, rtts = stake_committee(registry, selector, demo, chain.dev_keys, now)
        print(f"\nstaked {len(staked)} demo validators, selected a committee, reported {rtts} RTTs")
        if api_port is not None:
            deployment_file = state_dir / "deployment.json"
            api = start_api(
                deployment_file, chain.rpc_url, pick_port(api_port), state_dir / "api.log"
            )
            print(f"API              {api.url}/docs")
            print(f"dashboard        {api.url}/")
        if once:
            return 0
        print(
            "\nheartbeats are not renewed yet: sites go stale after 120 s. Ctrl-C stops the devnet."
        )
        stop = False

        def _stop(_sig: int, _frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stop and chain.process.poll() is None:
            time.sleep(0.5)
        return 0
    finally:
        if api is not None:
            api.stop()
        chain.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-devnet", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="anvil port (default: a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet"), help="where files go")
    parser.add_argument("--once", action="store_true", help="stop after setting up and printing")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: 8000 if free)")
    parser.add_argument("--no-api", action="store_true", help="do not serve the API and dashboard")
    args = parser.parse_args(argv)
    try:
        api_port = None if args.no_api else args.api_port
        return run(args.port or free_port(), args.state_dir, args.once, api_port)
    except RedundancyError as exc:
        print(f"redundancy-devnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
