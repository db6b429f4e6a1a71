"""Committee nodes sign settlement batches via etcd; a stake quorum commits them on anvil."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.localchain import LocalChain
from devnet.loggen import generate
from devnet.world import build
from redundancy.eip712 import Signer
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.test_settlement import SITES, VALIDATORS
from validator.engine import Engine
from validator.node.etcd import EtcdClient
from validator.node.follower import Boundary
from validator.node.settler import Settler


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(["s0", "s1", "s2"], tmp_path / "etcd") as c:
        yield c


def boundary() -> Boundary:
    engine = Engine()
    for seq, msg in enumerate(generate(500, 3), 1):
        engine.apply_at(seq, msg)
    return Boundary(5, 1, engine.seq, engine.state_hash())


def settlers(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, chain: LocalChain, etcd: EtcdCluster
) -> list[Settler]:
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(4), GeographyPolicy(min_epoch_seconds=60)
    )
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    selector.select_committee(sender=owner)
    return [
        Settler(
            v.name,
            EtcdClient(etcd.endpoints),
            Signer(bytes(world.validators[v.name].node().key)),
            SettlementClient(w3, ledger.address, Account.from_key(chain.dev_keys[5 + i])),
            selector,
            registry,
        )
        for i, v in enumerate(VALIDATORS)
    ]


async def _settle(nodes: list[Settler], b: Boundary, timeout: float) -> list[bool]:
    view = nodes[0].committee()
    return list(await asyncio.gather(*(n.settle(b, view, timeout) for n in nodes)))


def test_nodes_holding_a_quorum_commit_the_batch_on_chain(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    nodes = settlers(w3, registry, owner, anvil_chain, etcd)
    b = boundary()
    quorum = [nodes[i] for i in (0, 1, 3)]  # stakes 30 + 30 + 10 of 90
    assert asyncio.run(_settle(quorum, b, 20.0)) == [True, True, True]
    assert nodes[0].ledger.last_committed() == (b.last, b.root, 1)
    assert sum(len(n.committed) for n in quorum) == 1  # one submission; the others saw it done


def test_a_minority_of_stake_cannot_commit_a_batch(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    nodes = settlers(w3, registry, owner, anvil_chain, etcd)
    b = boundary()
    minority = [nodes[0], nodes[1]]  # 60 of 90: exactly 2/3, not more
    assert asyncio.run(_settle(minority, b, 1.5)) == [False, False]
    assert nodes[0].ledger.last_committed() == (0, bytes(32), 0)
