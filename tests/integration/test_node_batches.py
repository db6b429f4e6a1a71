"""Committee nodes sign settlement batches via etcd; a stake quorum commits them on anvil."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.localchain import LocalChain
from devnet.loggen import generate
from devnet.ports import free_port
from devnet.world import World, build
from redundancy.batches import Batch
from redundancy.eip712 import Signature, Signer
from redundancy.errors import ContractRevertError
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.test_settlement import SITES, VALIDATORS
from validator.engine import Engine
from validator.engine.codec import encode_message
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.follower import Boundary, Node
from validator.node.inputlog import SIGS, SNAP, roots_prefix, sigs_prefix
from validator.node.queries import create_app
from validator.node.sequencer import Sequencer
from validator.node.settings import ChainSettings, Settings
from validator.node.settler import Settler, start_settler


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(["s0", "s1", "s2"], tmp_path / "etcd") as c:
        yield c


def boundary(index: int = 5) -> Boundary:
    engine = Engine()
    for seq, msg in enumerate(generate(500, 3), 1):
        engine.apply_at(seq, msg)
    return Boundary(index, 1, engine.seq, engine.state_hash())


def deploy(
    w3: Web3, registry: RegistryClient, owner: LocalAccount
) -> tuple[World, SelectorClient, SettlementClient]:
    """The four-validator world, its selector (a committee selected) and ledger."""
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(4), GeographyPolicy(min_epoch_seconds=60)
    )
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    selector.select_committee(sender=owner)
    return world, selector, ledger


def settlers(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    chain: LocalChain,
    etcd: EtcdCluster,
    grace: float = 5.0,
) -> list[Settler]:
    world, selector, ledger = deploy(w3, registry, owner)
    return [
        Settler(
            v.name,
            EtcdClient(etcd.endpoints),
            Signer(bytes(world.validators[v.name].node().key)),
            SettlementClient(w3, ledger.address, Account.from_key(chain.dev_keys[5 + i])),
            selector,
            registry,
            grace=grace,
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


def _ledger_transactions(w3: Web3, ledger: str, since: int) -> list[int]:
    """The status of every transaction sent to the ledger after block ``since``."""
    out = []
    for number in range(since + 1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["to"] == ledger:  # type: ignore[index]
                out.append(int(w3.eth.get_transaction_receipt(tx["hash"])["status"]))  # type: ignore[index]
    return out


def test_a_healthy_committee_submits_each_batch_once_and_nothing_reverts(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    # the default grace: the first submitter's commit lands well within it even on a loaded
    # machine (a grace shorter than a commit takes would let the second one in: two submissions)
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=5.0)
    start = w3.eth.block_number
    view = nodes[0].committee()
    template = boundary()

    async def four_batches() -> None:
        last = 0
        for index in (50, 100, 150, 200):
            b = Boundary(index, last + 1, template.last + index, template.root)
            results = await asyncio.gather(*(n.settle(b, view, 20.0) for n in nodes))
            assert results == [True] * 4
            (submitter,) = [n for n in nodes if n.submissions]
            assert submitter.signer.address.lower() == view.rotation(index)[0]
            assert submitter.submissions == [(Batch(view.epoch, b.first, b.last, b.root), False)]
            for n in nodes:
                n.submissions.clear()
            last = b.last

    asyncio.run(four_batches())
    assert _ledger_transactions(w3, nodes[0].ledger.address, start) == [1, 1, 1, 1]
    # the rotation spreads the submissions: not one node paying for every batch
    orders = {nodes[0].committee().rotation(i)[0] for i in range(50, 1050, 50)}
    assert len(orders) > 1


def test_the_next_node_steps_in_after_the_grace_when_the_first_is_gone(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    # a grace longer than a loaded machine's commit, so that the first in rotation (present)
    # never looks absent to the second
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=3.0)
    view = nodes[0].committee()
    small = {n.signer.address.lower() for n in nodes[2:]}  # stakes 20 and 10: without either
    index = next(i for i in range(1, 1000) if view.rotation(i)[0] in small)  # a quorum remains
    b = boundary(index)
    gone = next(n for n in nodes if n.signer.address.lower() == view.rotation(index)[0])
    alive = [n for n in nodes if n is not gone]
    start = w3.eth.block_number
    began = time.monotonic()
    assert asyncio.run(_settle(alive, b, 20.0)) == [True] * 3
    took = time.monotonic() - began
    (submitter,) = [n for n in alive if n.submissions]
    assert submitter.signer.address.lower() == view.rotation(index)[1]
    assert took >= 3.0  # it waited out one grace period
    assert _ledger_transactions(w3, nodes[0].ledger.address, start) == [1]


def test_a_committee_change_while_a_batch_waits_for_its_quorum_is_signed_again_and_commits(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """Two nodes sign under epoch 1 (40 of 90: no quorum), then sv3 withdraws, a keeper selects
    epoch 2 (sv0, sv1, sv2) and the other two nodes sign under it. Before the epoch check the
    two groups signed different batches and neither reached a quorum, so the batch (and every
    later one) was never committed; sv3's node, no longer a member, signs too and must be left
    out of the submission (the ledger reverts on a non-member)."""
    # the default grace, as above: the assertion is one submission
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=5.0)
    for n in nodes:
        n.epoch_check = 0.5
    sv0, sv1, sv2, sv3 = nodes
    b = boundary()
    start = w3.eth.block_number

    async def scenario() -> tuple[list[bool], int, int]:
        old = await asyncio.to_thread(sv0.committee)
        early = [asyncio.create_task(n.settle(b, old, 30.0)) for n in (sv0, sv3)]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(registry.deregister_validator, sender=VALIDATORS[3].account())
        await asyncio.to_thread(sv0.selector.select_committee, sender=owner)
        new = await asyncio.to_thread(sv1.committee)
        late = [asyncio.create_task(n.settle(b, new, 30.0)) for n in (sv1, sv2)]
        return list(await asyncio.gather(*early, *late)), old.epoch, new.epoch

    results, old_epoch, new_epoch = asyncio.run(scenario())
    assert new_epoch == old_epoch + 1
    assert results == [True] * 4
    assert sv0.ledger.last_committed() == (b.last, b.root, 1)
    assert sv0.ledger.last_epoch() == new_epoch  # signed by the new committee
    assert [s for n in nodes for s in n.submissions] == [
        (Batch(new_epoch, b.first, b.last, b.root), False)
    ]
    assert _ledger_transactions(w3, sv0.ledger.address, start) == [1]


def test_a_node_late_for_a_committed_batch_moves_on_without_signing_it(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """Nodes delete their signatures once a batch is committed, so a node reaching the boundary
    later found no quorum and waited its whole timeout on a batch already settled. It now asks
    the ledger first."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd)
    b = boundary()
    assert asyncio.run(_settle([nodes[i] for i in (0, 1, 3)], b, 20.0)) == [True] * 3
    late = nodes[2]

    async def scenario() -> tuple[bool, list[bytes]]:
        view = await asyncio.to_thread(late.committee)
        settled = await late.settle(b, view, 20.0)
        prefix = sigs_prefix(b.index)
        kvs, _, _ = await late.etcd.get_range(prefix, prefix_end(prefix))
        return settled, [kv.key for kv in kvs]

    settled, keys = asyncio.run(scenario())
    assert settled
    assert sigs_prefix(b.index) + late.node_id.encode() not in keys  # nothing to sign


def test_a_batch_committed_while_nodes_wait_for_its_quorum_ends_their_wait(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """Two nodes wait for a quorum; the third signature never shows in etcd (its node
    committed the batch and deleted its signature at once, as nodes do). The waiting nodes
    never see the quorum: they used to wait out their whole timeout and report the batch
    unsettled. They now ask the ledger while they wait."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd)
    b = boundary()

    async def scenario() -> tuple[list[bool], float]:
        view = await asyncio.to_thread(nodes[0].committee)
        batch = Batch(view.epoch, b.first, b.last, b.root)
        waiting = [asyncio.create_task(n.settle(b, view, 20.0)) for n in nodes[:2]]
        deadline = time.monotonic() + 10
        while len(sigs := await nodes[0].signatures(b.index, batch, view)) < 2:
            assert time.monotonic() < deadline, "the two nodes did not sign"
            await asyncio.sleep(0.05)
        third = nodes[3].signer.sign(nodes[3].ledger.domain_separator, batch)
        await asyncio.to_thread(nodes[3].ledger.commit_batch, batch, [*sigs.values(), third])
        committed = time.monotonic()
        return list(await asyncio.gather(*waiting)), time.monotonic() - committed

    settled, took = asyncio.run(scenario())
    assert settled == [True, True]
    assert took < 10, took  # about the 1 s ledger check, not the 20 s timeout
    assert nodes[0].ledger.last_committed() == (b.last, b.root, 1)


def test_a_commit_that_fails_everywhere_is_tried_again_until_the_ledger_has_it(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """Every submitter has no funds: each node's commit fails (InsufficientFundsError). A node
    used to count its failed attempt as settled and move on, so the batch (and every later one,
    the ledger taking contiguous ranges only) was never committed. Now the ledger decides: the
    nodes keep trying, and the batch lands once a submitter is funded."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    broke = [Account.create() for _ in nodes]
    attempts: list[tuple[float, str]] = []
    for n, account in zip(nodes, broke, strict=True):
        n.ledger = SettlementClient(w3, n.ledger.address, account)
        send = n.ledger.commit_batch

        def counted(*args: Any, _send: Any = send, _name: str = n.node_id) -> Any:
            attempts.append((time.monotonic(), _name))
            return _send(*args)

        n.ledger.commit_batch = counted  # type: ignore[method-assign]
    b = boundary()

    async def scenario() -> tuple[list[bool], float]:
        view = await asyncio.to_thread(nodes[0].committee)
        tasks = [asyncio.create_task(n.settle(b, view, 60.0)) for n in nodes]
        await asyncio.sleep(4.0)  # a quorum, every rank's turn, and every commit failed
        assert not any(t.done() for t in tasks), "a failed commit was counted as settled"
        assert nodes[0].ledger.last_committed() == (0, bytes(32), 0)
        for account in broke:
            await asyncio.to_thread(
                w3.eth.send_transaction,
                {"from": w3.eth.accounts[0], "to": account.address, "value": 10**18},
            )
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(scenario()) == [True] * 4
    assert nodes[0].ledger.last_committed() == (b.last, b.root, 1)
    # the retries keep the rotation's spacing: never two nodes at once (each failed at its own
    # turn, and a grace later used to retry together with every rank whose turn had come)
    times = sorted(t for t, _ in attempts)
    assert len({name for _, name in attempts}) == 4, attempts  # every rank tried and failed
    assert min(b - a for a, b in itertools.pairwise(times)) > 0.5, attempts
    assert sum(len(n.committed) for n in nodes) == 1, attempts  # one commit landed


def test_malformed_signature_entries_are_skipped_and_the_batch_commits(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """Anyone who can write to etcd can put junk beside the signatures: an entry that is not a
    signature, and an honest node's signature with r one byte longer and s one byte shorter
    (the same 64 bytes, so it recovered the honest node, counted toward the quorum and then
    made building the transaction fail). Both used to end the node's settlement."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    b = boundary()
    quorum = [nodes[i] for i in (0, 1, 3)]

    async def scenario() -> list[bool]:
        view = await asyncio.to_thread(nodes[0].committee)
        honest = nodes[0].signer.sign(
            nodes[0].ledger.domain_separator, Batch(view.epoch, b.first, b.last, b.root)
        )
        split = Signature(honest.v, honest.r + honest.s[:1], honest.s[1:])
        junk = {
            b"zz-empty": b"{}",
            b"zz-not-json": b"\xff",
            b"zz-nested": b"[" * 100_000,  # used to kill the node (SIGSEGV, see test_codec)
            b"zz-split": json.dumps(
                {"v": split.v, "r": split.r.hex(), "s": split.s.hex()}
            ).encode(),
        }
        for name, value in junk.items():
            await nodes[0].etcd.put(sigs_prefix(b.index) + name, value)
        return await _settle(quorum, b, 30.0)

    assert asyncio.run(scenario()) == [True] * 3
    assert nodes[0].ledger.last_committed() == (b.last, b.root, 1)


def test_batches_left_unsettled_by_a_restart_are_resumed_from_the_published_roots(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """Three nodes holding a quorum apply 200 chunks (boundaries at 50, 100, 150, 200; a
    snapshot at 200) with no settler running, then restart: they restore the snapshot at 200
    and no new chunk comes. Boundaries lived only in memory, so nothing was ever signed; now
    each node reads its own published roots back and all four batches commit in order; then
    each deletes its signatures of them."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=2.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    lines = [encode_message(m) for m in generate(400, 7)]

    def settings(s: Settler) -> Settings:
        return node_settings(s, quorum, etcd, tmp_path, batch_every=50, snapshot_every=200)

    async def first_life() -> bytes:
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        for k in range(200):
            await writer.submit(lines[2 * k : 2 * k + 2])
        runner.cancel()
        followers = [Node(settings(s), EtcdClient(etcd.endpoints)) for s in quorum]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        deadline = time.monotonic() + 60
        while not all([await f.etcd.get(SNAP + f.settings.node_id.encode()) for f in followers]):
            assert time.monotonic() < deadline, "the nodes did not reach their snapshot"
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        assert {f.engine.state_hash() for f in followers} == {followers[0].engine.state_hash()}
        assert followers[0].applied == 200
        return followers[0].engine.state_hash()

    async def second_life() -> None:
        followers = [Node(settings(s), EtcdClient(etcd.endpoints)) for s in quorum]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        tasks += [asyncio.create_task(s.run(f)) for s, f in zip(quorum, followers, strict=True)]
        deadline = time.monotonic() + 90
        while (await asyncio.to_thread(quorum[0].ledger.last_committed))[2] < 4:
            assert time.monotonic() < deadline, "the batches from before the restart not settled"
            await asyncio.sleep(0.25)
        ours = {s.node_id for s in quorum}
        while [k for k in (await _sig_keys(etcd))[0] if k.rsplit(b"/", 1)[1].decode() in ours]:
            assert time.monotonic() < deadline, "signatures of committed batches left in etcd"
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()

    root = asyncio.run(first_life())
    assert quorum[0].ledger.last_committed()[2] == 0
    asyncio.run(second_life())
    assert quorum[0].ledger.last_committed() == (400, root, 4)
    committed = [batch for s in quorum for batch in s.committed]
    assert sorted((c.first_sequence, c.last_sequence) for c in committed) == [
        (1, 100), (101, 200), (201, 300), (301, 400)
    ]  # fmt: skip


async def _sig_keys(etcd: EtcdCluster) -> tuple[list[bytes], bool]:
    """Every signature key left in etcd (a node deletes its own once the batch is committed)."""
    client = EtcdClient(etcd.endpoints)
    kvs, _, more = await client.get_range(SIGS, prefix_end(SIGS), keys_only=True)
    await client.aclose()
    return [kv.key for kv in kvs], more


def test_a_commit_mined_and_reverted_carries_its_transaction_and_its_decoded_error(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
) -> None:
    """A batch with no signatures, sent past estimation (a fixed gas limit, as a commit racing
    another one is): it is mined and reverts. The error is the ledger's own, decoded, and says
    the transaction was sent (before, a decoded revert did not, so the settler counted a mined
    revert as refused at estimation and left it out of its submissions)."""
    (node, *_) = settlers(w3, registry, owner, anvil_chain, etcd)
    view = node.committee()
    b = boundary()
    fn = node.ledger.contract.functions.commitBatch(
        Batch(view.epoch, b.first, b.last, b.root).as_tuple(), []
    )
    with pytest.raises(ContractRevertError) as caught:
        node.ledger.tx.send(fn, Account.from_key(anvil_chain.dev_keys[5]), gas=300_000)
    assert caught.value.error_name.startswith("Settlement")
    assert caught.value.mined_tx is not None
    receipt = w3.eth.get_transaction_receipt(caught.value.mined_tx)  # type: ignore[arg-type]
    assert receipt["status"] == 0


def _root_entry(first: int, last: int, root: bytes, chain: bytes) -> bytes:
    return json.dumps(
        {"root": root.hex(), "first": first, "last": last, "chain": chain.hex(), "revision": 1}
    ).encode()


def node_settings(
    s: Settler, quorum: list[Settler], etcd: EtcdCluster, tmp_path: Path, **values: Any
) -> Settings:
    """The settings of ``s``'s node in a committee of ``quorum``'s nodes, plus ``values``."""
    return Settings(
        node_id=s.node_id,
        etcd_endpoints=etcd.endpoints,
        committee=[q.node_id for q in quorum],
        data_dir=tmp_path / s.node_id,
        **values,
    )


def _restarted(
    me: Settler, quorum: list[Settler], etcd: EtcdCluster, tmp_path: Path, at: int, applied: int
) -> Node:
    """``me``'s node as restarted from its snapshot at chunk ``at``, now at ``applied``
    (batches every 50 chunks)."""
    node = Node(
        node_settings(me, quorum, etcd, tmp_path, batch_every=50), EtcdClient(etcd.endpoints)
    )
    node.restored_at, node.applied = at, applied
    return node


def test_recovery_walks_back_from_the_restored_position_to_the_ledger(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """A node restored at chunk 230 published roots at 50..250 before it stopped (250: reached
    again after the restart, so also queued for the settler). The ledger has the batch at 50.
    Recovery must give exactly 100, 150 and 200: not 50 (committed), not 250 (it comes through
    the queue; read back too, it was settled twice)."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    me = quorum[2]
    entries = {
        k: (100 * (k // 50 - 1) + 1, 100 * (k // 50), bytes([k]) * 32) for k in range(50, 251, 50)
    }
    assert asyncio.run(_settle(quorum, Boundary(50, *entries[50]), 30.0)) == [True] * 3

    async def scenario() -> list[Boundary]:
        me.etcd = EtcdClient(etcd.endpoints)  # the last one's session closed with its loop
        for k, (first, last, root) in entries.items():
            value = _root_entry(first, last, root, bytes([k + 1]) * 32)
            await me.etcd.put(roots_prefix(k) + me.node_id.encode(), value)
        return await me.recover(_restarted(me, quorum, etcd, tmp_path, 230, 250))

    found = asyncio.run(scenario())
    assert [(b.index, b.first, b.last, b.root, b.chain) for b in found] == [
        (k, entries[k][0], entries[k][1], entries[k][2], bytes([k + 1]) * 32)
        for k in (100, 150, 200)
    ]


def test_recovery_stops_at_the_first_root_the_committee_refutes(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """A node that stopped for good (its state not the committee's) kept publishing its roots.
    Restarted, its settler read them back and signed them. Now recovery gives the boundaries up
    to the first one whose root a majority of the committee refutes: the other two agree with it
    at 50 and 100, at 150 both published another root, so 150 and 200 are not resumed (a former
    member's root and an unreadable entry at 100 are no votes against it)."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    me, others = quorum[2], quorum[:2]
    entries = {
        k: (100 * (k // 50 - 1) + 1, 100 * (k // 50), bytes([k]) * 32) for k in (50, 100, 150, 200)
    }

    async def scenario() -> list[Boundary]:
        me.etcd = EtcdClient(etcd.endpoints)
        for k, (first, last, root) in entries.items():
            await me.etcd.put(
                roots_prefix(k) + me.node_id.encode(), _root_entry(first, last, root, bytes(32))
            )
            theirs = bytes([k + 1]) * 32 if k >= 150 else root
            for o in others:
                value = _root_entry(first, last, theirs, bytes(32))
                await me.etcd.put(roots_prefix(k) + o.node_id.encode(), value)
        await me.etcd.put(
            roots_prefix(100) + b"former", _root_entry(101, 200, bytes(32), bytes(32))
        )
        await me.etcd.put(roots_prefix(100) + others[0].node_id.encode(), b"{not json")
        return await me.recover(_restarted(me, quorum, etcd, tmp_path, 200, 200))

    found = asyncio.run(scenario())
    assert [(b.index, b.root) for b in found] == [(50, entries[50][2]), (100, entries[100][2])]


def test_a_commit_is_forgotten_only_when_deep_enough_and_a_reorganised_one_commits_again(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """Three nodes hold a quorum only together and count a commit settled 3 blocks deep. Their
    batch commits; while no block follows, none of them deletes its signature or lets its held
    snapshot move past the batch. The next batch then reaches them as the chain is reverted to
    before the first commit (what a reorganisation does to it): the next batch cannot commit
    before it, so the nodes give way, commit the first again, then the next, and once 3 blocks
    follow they forget both. Before, a node forgot a batch the moment the head showed its
    commit, so the batch a reorganisation took off the chain could never be committed again."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    for s in quorum:
        s.confirmations = 3
    b = boundary()
    after = Boundary(10, b.last + 1, b.last + 50, bytes.fromhex("11" * 32), bytes(32))

    def rpc(method: str, *params: Any) -> Any:
        reply = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in reply, reply
        return reply["result"]

    async def until(what: Any, message: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await what():
            assert time.monotonic() < deadline, message
            await asyncio.sleep(0.1)

    async def committed(last: int = b.last) -> bool:
        return (await asyncio.to_thread(quorum[0].ledger.last_committed))[0] == last

    async def scenario() -> None:
        runs: list[Node] = []
        for s in quorum:
            node = Node(node_settings(s, quorum, etcd, tmp_path), EtcdClient(etcd.endpoints))
            node.restored.set()
            node.boundaries.put_nowait(b)
            runs.append(node)
        before = rpc("evm_snapshot")
        tasks = [asyncio.create_task(s.run(n)) for s, n in zip(quorum, runs, strict=True)]
        await until(committed, "the batch never committed")
        await asyncio.sleep(3.0)  # no block follows the commit: not deep enough
        assert [n.settled_through for n in runs] == [0, 0, 0]
        assert len((await _sig_keys(etcd))[0]) == 3
        for n in runs:
            n.boundaries.put_nowait(after)
        assert rpc("evm_revert", before) is True  # the commit is off the chain
        assert (await asyncio.to_thread(quorum[0].ledger.last_committed))[0] == 0
        await until(lambda: committed(after.last), "the undone batch and the next never committed")
        assert [n.settled_through for n in runs] == [0, 0, 0]
        for _ in range(3):
            rpc("evm_mine")

        async def forgotten() -> bool:
            return [n.settled_through for n in runs] == [after.index] * 3

        await until(forgotten, "the deep commit was never counted settled")
        await until(lambda: _no_sigs(etcd), "the signatures were never deleted")
        for t in tasks:
            t.cancel()

    asyncio.run(scenario())
    assert quorum[0].ledger.last_committed() == (after.last, after.root, 2)


async def _no_sigs(etcd: EtcdCluster) -> bool:
    return not (await _sig_keys(etcd))[0]


def test_the_settler_waits_while_its_node_catches_up_and_then_signs_the_batch(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """Three nodes hold a quorum only together. One is still catching up (``lagging``) when a
    boundary reaches its settler: it signs nothing while it lags (no quorum, nothing committed),
    and the batch is neither dropped nor skipped: once the node serves, it signs and the batch
    commits."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    late = quorum[2]
    b = boundary()

    async def scenario() -> int | None:
        node = Node(
            Settings(
                node_id=late.node_id,
                etcd_endpoints=etcd.endpoints,
                committee=[q.node_id for q in quorum],
                data_dir=tmp_path / "late",
            ),
            EtcdClient(etcd.endpoints),
        )
        node.lagging = "catching up (this test)"
        node.restored.set()
        node.boundaries.put_nowait(b)
        runner = asyncio.create_task(late.run(node))
        view = await asyncio.to_thread(quorum[0].committee)
        others = [asyncio.create_task(s.settle(b, view, 60.0)) for s in quorum[:2]]
        await asyncio.sleep(3.0)
        kv = await late.etcd.get(sigs_prefix(b.index) + late.node_id.encode())
        assert kv is None, "a lagging node signed a batch"
        assert late.ledger.last_committed() == (0, bytes(32), 0)
        assert not runner.done()
        node.lagging = None
        assert await asyncio.gather(*others) == [True, True]
        deadline = time.monotonic() + 30
        while node.settled_through != b.index:
            assert time.monotonic() < deadline, "the settler never came back to the batch"
            await asyncio.sleep(0.1)
        runner.cancel()
        return node.settled_through

    assert asyncio.run(scenario()) == b.index
    assert nodes[0].ledger.last_committed() == (b.last, b.root, 1)


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def test_a_node_started_while_the_chain_is_unreachable_follows_the_log_and_settles_later(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """The node's chain endpoint refuses connections when it starts: the node follows the log
    and publishes its roots regardless, its settler waits for the chain. When the endpoint
    comes up (a forwarder to anvil opens on it), the batch the node reached meanwhile commits
    with its signature."""
    world, selector, ledger = deploy(w3, registry, owner)
    quorum = [VALIDATORS[i] for i in (0, 1, 3)]
    helpers = [
        Settler(
            v.name,
            EtcdClient(etcd.endpoints),
            Signer(bytes(world.validators[v.name].node().key)),
            SettlementClient(w3, ledger.address, Account.from_key(anvil_chain.dev_keys[5 + i])),
            selector,
            registry,
            grace=1.0,
        )
        for i, v in enumerate(quorum[:2])
    ]
    me = quorum[2]
    with socket.socket() as s:  # a free port nothing listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        node_id=me.name,
        etcd_endpoints=etcd.endpoints,
        committee=[me.name],  # its own root checks pass alone; the ledger counts stake
        data_dir=tmp_path / "me",
        batch_every=50,
        chain=ChainSettings(
            rpc_url=f"http://127.0.0.1:{port}",
            settlement=ledger.address,
            selector=selector.address,
            registry=registry.address,
            submit_grace=1.0,
            dev_node_key=world.validators[me.name].node().key.hex(),
            dev_submitter_key=anvil_chain.dev_keys[8],
        ),
    )
    lines = [encode_message(m) for m in generate(100, 11)]
    upstream = anvil_chain.rpc_url.removeprefix("http://").rsplit(":", 1)

    async def scenario() -> Node:
        node = Node(settings, EtcdClient(etcd.endpoints))
        follower = node.start()
        settler = start_settler(settings, node)
        assert settler is not None
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())
        for k in range(50):
            await writer.submit(lines[2 * k : 2 * k + 2])
        deadline = time.monotonic() + 30
        while node.applied < 50:
            assert time.monotonic() < deadline, "the node did not follow the log"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # the settler tries the chain meanwhile
        assert node.serving and not settler.done() and not follower.done()
        assert ledger.last_committed() == (0, bytes(32), 0)
        assert node.settled_through == 0
        kv = await node.etcd.get(roots_prefix(50) + me.name.encode())
        assert kv is not None, "the node published no root while the chain was down"
        d = json.loads(kv.value)
        b = Boundary(50, d["first"], d["last"], bytes.fromhex(d["root"]))
        view = await asyncio.to_thread(helpers[0].committee)
        others = [asyncio.create_task(h.settle(b, view, 60.0)) for h in helpers]

        async def relay(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            ur, uw = await asyncio.open_connection(upstream[0], int(upstream[1]))
            await asyncio.gather(_forward(r, uw), _forward(ur, w))

        server = await asyncio.start_server(relay, "127.0.0.1", port)
        assert await asyncio.gather(*others) == [True, True]
        while node.settled_through != 50:
            assert time.monotonic() < deadline + 60, "the settler never reached the chain"
            await asyncio.sleep(0.1)
        for t in (follower, settler, runner):
            t.cancel()
        server.close()
        return node

    node = asyncio.run(scenario())
    assert ledger.last_committed() == (100, node.engine.state_hash(), 1)


def test_a_boundary_reached_on_a_state_since_set_aside_is_never_signed(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A node re-synced after the committee refuted its root at chunk 100: its settler still
    holds two boundaries of the state it set aside. The one at 150 (past the refuted one) is not
    the venue's: dropped, not signed. The one at 50 was checked and agreed before the state
    went wrong: signed (queued after the other, it shows the settler went past it)."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd)
    me = nodes[0]
    refuted, agreed = boundary(150), boundary(50)

    async def scenario() -> tuple[bool, bool]:
        node = Node(
            Settings(
                node_id=me.node_id,
                etcd_endpoints=etcd.endpoints,
                committee=[me.node_id],
                data_dir=tmp_path / "me",
            ),
            EtcdClient(etcd.endpoints),
        )
        node._refuted_from[0] = 100
        node.generation = 1
        node.restored.set()
        node.boundaries.put_nowait(refuted)
        node.boundaries.put_nowait(agreed)
        runner = asyncio.create_task(me.run(node))
        deadline = time.monotonic() + 15
        while await me.etcd.get(sigs_prefix(agreed.index) + me.node_id.encode()) is None:
            assert time.monotonic() < deadline, "the agreed boundary was never signed"
            await asyncio.sleep(0.05)
        signed = await me.etcd.get(sigs_prefix(refuted.index) + me.node_id.encode())
        runner.cancel()
        return signed is not None, node.signable(agreed)

    with caplog.at_level(logging.WARNING, logger="validator.node.settler"):
        assert asyncio.run(scenario()) == (False, True)
    assert "batch at chunk 150 not signed: reached on a state since set aside" in caplog.text


def test_a_node_on_an_empty_disk_replays_from_the_held_snapshot_and_signs_what_the_ledger_lacks(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    anvil_chain: LocalChain,
    etcd: EtcdCluster,
    tmp_path: Path,
) -> None:
    """Three nodes whose stakes (30 + 30 + 10 of 90) are a quorum only all together settle the
    batches at chunks 10 and 20. Then the third stops; the others apply 40 more chunks, whose
    four batches cannot commit without it, and compact the log. The third comes back on an empty
    disk: its position is compacted away, so it catches up from a peer's snapshot. The peers
    give the one they hold at the ledger's last commit (chunk 20), not their newest (60): it
    replays chunks 21-60, signs their batches and the ledger gets all six. Before, it took the
    newest, never computed the roots of the four batches before it, and settlement stopped for
    good."""
    nodes = settlers(w3, registry, owner, anvil_chain, etcd, grace=1.0)
    quorum = [nodes[i] for i in (0, 1, 3)]
    lines = [encode_message(m) for m in generate(120, 13)]
    ports = [free_port() for _ in quorum[:2]]
    urls = [f"http://127.0.0.1:{p}" for p in ports]

    def settings(s: Settler) -> Settings:
        return node_settings(
            s,
            quorum,
            etcd,
            tmp_path,
            batch_every=10,
            snapshot_every=20,
            write_deadline=0.5,
            write_settle_timeout=0.2,
            etcd_timeout=1.0,
            log_retention=2.0,
            peers=urls if s is quorum[2] else [],
        )

    async def batches() -> int:
        return int((await asyncio.to_thread(quorum[0].ledger.last_committed))[2])

    async def until(what: str, check: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not await check():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.1)

    async def scenario() -> tuple[Node, bytes]:
        writer = Sequencer(EtcdClient(etcd.endpoints), "gw")
        runner = asyncio.create_task(writer.run())

        async def write(first: int, count: int) -> None:
            for k in range(first, first + count):
                await writer.submit(lines[2 * k : 2 * k + 2])

        def start(s: Settler) -> tuple[Node, list[asyncio.Task[None]]]:
            n = Node(settings(s), EtcdClient(etcd.endpoints))
            return n, [asyncio.create_task(n.run()), asyncio.create_task(s.run(n))]

        (a, ta), (b, tb), (c, tc) = (start(s) for s in quorum)
        servers = [
            uvicorn.Server(uvicorn.Config(create_app(n), port=p, log_level="warning"))
            for n, p in zip((a, b), ports, strict=True)
        ]
        served = [asyncio.create_task(srv.serve()) for srv in servers]
        await write(0, 20)
        await until("the first two batches did not commit", lambda: _at_least(batches, 2), 60)
        for t in tc:
            t.cancel()
        await write(20, 20)
        await asyncio.sleep(2.2)  # the committee's floor grows older than log_retention
        await write(40, 20)

        async def compacted() -> bool:
            return a.applied == b.applied == 60 and max(a.deleted_below, b.deleted_below) > 0

        await until("the peers did not apply and compact the log", compacted, 60)
        assert await batches() == 2  # the third's signature is missing from every later batch
        assert (a.published, b.published) == (20, 20)
        async with aiohttp.ClientSession() as session, session.get(urls[0] + "/snapshot") as r:
            assert json.loads((await r.read()).partition(b"\n")[0])["ordinal"] == 20
        shutil.rmtree(tmp_path / quorum[2].node_id)
        c, tc = start(quorum[2])
        await until(
            "the batches the ledger lacked were not settled", lambda: _at_least(batches, 6), 90
        )
        for t in [*ta, *tb, *tc, runner]:
            t.cancel()
        for srv in servers:
            srv.should_exit = True
        await asyncio.gather(*served)
        return c, a.engine.state_hash()

    c, root = asyncio.run(scenario())
    assert c.engine.state_hash() == root
    assert quorum[0].ledger.last_committed() == (120, root, 6)


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
