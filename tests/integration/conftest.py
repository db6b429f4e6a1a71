"""Integration fixtures: one registry on a real anvil, role accounts, and a snapshot per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.examples import example_site
from devnet.localchain import LocalChain, start_chain
from redundancy.chain import connect
from redundancy.domains import Dimension, Kind, domain_id, facility_id, hardware_domain
from redundancy.eip712 import Signer
from redundancy.evidence import canonical_json
from redundancy.proofs import SignedProof, make_proof, subject_for_node
from redundancy.registry import RegistryClient
from tests.attestor_sites import Deployed, deploy_registry


@dataclass(frozen=True)
class Site:
    """A registered facility and its attestor key."""

    name: str
    facility_id: bytes
    signer: Signer
    account: LocalAccount


@pytest.fixture(scope="session")
def w3(anvil_chain: LocalChain) -> Web3:
    return connect(anvil_chain.rpc_url)


@pytest.fixture(scope="module")
def module_chain() -> Iterator[LocalChain]:
    """A fresh anvil for one test module: its clock is not moved by other tests."""
    with start_chain("anvil") as chain:
        yield chain


@pytest.fixture
def deployed(module_chain: LocalChain, tmp_path: Path) -> Deployed:
    """A registry deployed for this test on the module's anvil, with its deployment file."""
    return deploy_registry(module_chain, connect(module_chain.rpc_url), tmp_path)


def _account(chain: LocalChain, index: int) -> LocalAccount:
    return Account.from_key(chain.dev_keys[index])


@pytest.fixture(scope="session")
def owner(anvil_chain: LocalChain) -> LocalAccount:
    return _account(anvil_chain, 0)


@pytest.fixture(scope="session")
def outsider(anvil_chain: LocalChain) -> LocalAccount:
    return _account(anvil_chain, 2)


@pytest.fixture(scope="session")
def validator(anvil_chain: LocalChain) -> LocalAccount:
    return _account(anvil_chain, 3)


@pytest.fixture(scope="session")
def relayer(anvil_chain: LocalChain) -> LocalAccount:
    return _account(anvil_chain, 5)


@pytest.fixture(scope="session")
def node_key(anvil_chain: LocalChain) -> LocalAccount:
    """A validator node's identity key."""
    return _account(anvil_chain, 6)


def _site(chain: LocalChain, name: str, index: int) -> Site:
    acct = _account(chain, index)
    return Site(name, facility_id(name), Signer(bytes(acct.key)), acct)


@pytest.fixture(scope="session")
def site(anvil_chain: LocalChain) -> Site:
    """The facility "fra1", registered in the session deployment."""
    return _site(anvil_chain, "fra1", 1)


@pytest.fixture(scope="session")
def other_site(anvil_chain: LocalChain) -> Site:
    """The facility "ams1", registered in the session deployment."""
    return _site(anvil_chain, "ams1", 4)


CA_FINGERPRINT = bytes.fromhex("11" * 32)


@pytest.fixture(scope="session")
def registry(w3: Web3, owner: LocalAccount, site: Site, other_site: Site) -> RegistryClient:
    """A registry deployed once per session, with fra1 and ams1 registered."""
    client, _ = RegistryClient.deploy(w3, owner)
    client.register_facility(site.facility_id, site.signer.address, CA_FINGERPRINT)
    client.register_facility(other_site.facility_id, other_site.signer.address, CA_FINGERPRINT)
    return client


@pytest.fixture(autouse=True)
def chain_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """evm_snapshot before each test that uses the chain, evm_revert after."""
    if "w3" not in request.fixturenames:
        yield
        return
    web3: Web3 = request.getfixturevalue("w3")
    snap = web3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield
    web3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def advance_time(w3: Web3, seconds: int) -> None:
    """Move the chain's clock forward and mine a block."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


#: The proofs' default facts: the example site fra1's (examples/fra1.toml) and its node's.
_FRA1 = example_site("fra1")
_FACTS = _FRA1.facility
DEFAULT_DOMAINS: dict[Kind, tuple[bytes, bytes]] = {
    Kind.POWER: (domain_id(Dimension.POWER, _FACTS.grid), bytes(32)),
    Kind.GEOGRAPHY: (
        domain_id(Dimension.METRO, _FACTS.metro),
        domain_id(Dimension.COUNTRY, _FACTS.country),
    ),
    Kind.NETWORK: (domain_id(Dimension.NETWORK, _FACTS.asn), bytes(32)),
    Kind.PROVIDER: (domain_id(Dimension.PROVIDER, _FACTS.provider), bytes(32)),
    Kind.HEALTH: (bytes(32), bytes(32)),
    Kind.HARDWARE: (hardware_domain(*_FRA1.node.hardware), bytes(32)),
}
FRANKFURT = (_FACTS.latitude_e6, _FACTS.longitude_e6)


class ProofFactory:
    """Builds valid proofs by default; any field can be overridden to make a bad one."""

    def __init__(self, w3: Web3, registry: RegistryClient) -> None:
        self.w3 = w3
        self.registry = registry
        self._sequence = itertools.count(1)

    def make(
        self,
        site: Site,
        kind: Kind = Kind.POWER,
        *,
        signer: Signer | None = None,
        domain_sep: bytes | None = None,
        node: str | None = None,
        lifetime: int | None = None,
        **fields: object,
    ) -> SignedProof:
        t = now(self.w3)
        lifetime = lifetime or (60 if kind == Kind.HEALTH else 600)
        d1, d2 = DEFAULT_DOMAINS[kind]
        lat, lon = FRANKFURT if kind == Kind.GEOGRAPHY else (0, 0)
        args: dict[str, object] = {
            "facility_id": site.facility_id,
            "kind": kind,
            "evidence": canonical_json({"kind": kind.name.lower(), "site": site.name, "t": t}),
            "issued_at": t,
            "expires_at": t + lifetime,
            "sequence": next(self._sequence),
            "subject": subject_for_node(node) if node else None,
            "domain_id": d1,
            "secondary_domain_id": d2,
            "latitude_e6": lat,
            "longitude_e6": lon,
        }
        args.update(fields)
        return make_proof(
            signer or site.signer, domain_sep or self.registry.domain_separator(), **args
        )  # type: ignore[arg-type]

    def fresh_facility(self, site: Site) -> list[SignedProof]:
        """One proof of every facility-level kind: enough for the facility not to be stale."""
        kinds = (Kind.POWER, Kind.GEOGRAPHY, Kind.NETWORK, Kind.PROVIDER, Kind.HEALTH)
        return [self.make(site, k) for k in kinds]


@pytest.fixture
def proofs(w3: Web3, registry: RegistryClient) -> ProofFactory:
    return ProofFactory(w3, registry)
