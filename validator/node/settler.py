"""Settlement batches: each committee node signs (EIP-712) every batch boundary's range and state
root, publishes the signature beside the log, and once signatures of more than 2/3 of the
committee's stake are in, exactly one node commits the batch on the SettlementLedger.

Who submits is a deterministic rotation every node computes alike: the committee's node
addresses in ascending order, rotated by a hash of the boundary's chunk index. The first in that
order submits as soon as it sees the quorum; the k-th steps in only ``k * grace`` seconds after
the quorum appeared and only if the batch is still not committed. A healthy venue therefore sends
one transaction per batch and none reverts; a dead submitter costs one grace period.

A new committee mid-batch: the epoch is part of what is signed, so nodes that read the committee
on either side of a ``CommitteeSelected`` would sign different batches and none would reach a
quorum. While it waits, each node checks the selector's epoch every ``epoch_check`` seconds and,
when it moved, signs the batch again under the new epoch; only the batch epoch's members'
signatures are submitted (another's would make the ledger revert). A batch that found no quorum
in time is not skipped (the ledger takes contiguous ranges only): the node tries it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from redundancy.batches import Batch
from redundancy.chain import connect
from redundancy.eip712 import Signature, Signer, recover_address
from redundancy.errors import ChainError, ContractRevertError
from redundancy.keystore import load_account
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.follower import Boundary, Node
from validator.node.inputlog import sigs_prefix
from validator.node.settings import ChainSettings, Settings

log = logging.getLogger("validator.node.settler")


def _key(keystore: Path | None, password: Path | None, dev_key: str | None) -> LocalAccount:
    if keystore is not None and password is not None:
        return load_account(keystore, password.read_text().strip())
    if dev_key is not None:
        account: LocalAccount = Account.from_key(dev_key)
        return account
    raise ValueError("a keystore and password file (or a dev key) is required")


@dataclass
class CommitteeView:
    """The current committee as the ledger counts it: stake per bound node address."""

    epoch: int
    stake_by_node: dict[str, int]
    total: int

    def signed_stake(self, nodes: set[str]) -> int:
        return sum(self.stake_by_node.get(n.lower(), 0) for n in nodes)

    def has_quorum(self, nodes: set[str]) -> bool:
        return 3 * self.signed_stake(nodes) > 2 * self.total

    def rotation(self, index: int) -> list[str]:
        """The submission order for the batch at chunk ``index``: node addresses ascending,
        rotated by a hash of the index (every node computes the same order)."""
        nodes = sorted(self.stake_by_node)
        if not nodes:
            return []
        start = int.from_bytes(keccak(index.to_bytes(8, "big")), "big") % len(nodes)
        return nodes[start:] + nodes[:start]

    def rank(self, index: int, node: str) -> int:
        """This node's place in the rotation (after every member if it is not one)."""
        order = self.rotation(index)
        return order.index(node.lower()) if node.lower() in order else len(order)


class Settler:
    def __init__(
        self,
        node_id: str,
        etcd: EtcdClient,
        signer: Signer,
        ledger: SettlementClient,
        selector: SelectorClient,
        registry: RegistryClient,
        *,
        grace: float = 5.0,
        epoch_check: float = 1.0,
    ) -> None:
        self.node_id = node_id
        self.grace = grace
        self.epoch_check = epoch_check
        self.etcd = etcd
        self.signer = signer
        self.ledger = ledger
        self.selector = selector
        self.registry = registry
        self.committed: list[Batch] = []
        #: (batch, reverted) of every commit this node sent
        self.submissions: list[tuple[Batch, bool]] = []

    def committee(self) -> CommitteeView:
        """The ledger's count: each member weighs min(stake at selection, stake bonded now)
        against the committee's total at selection."""
        c = self.selector.current_committee()
        nodes: dict[str, int] = {}
        for m, selected in zip(c.members, c.stakes, strict=True):
            info = self.registry.validator_info(m)
            nodes[info.node.lower()] = min(selected, info.stake)
        return CommitteeView(c.epoch, nodes, sum(c.stakes))

    async def sign(self, b: Boundary, epoch: int) -> Batch:
        batch = Batch(epoch, b.first, b.last, b.root)
        sig = self.signer.sign(self.ledger.domain_separator, batch)
        value = {
            "epoch": epoch, "first": b.first, "last": b.last, "root": b.root.hex(),
            "v": sig.v, "r": sig.r.hex(), "s": sig.s.hex(),
        }  # fmt: skip
        await self.etcd.put(
            sigs_prefix(b.index) + self.node_id.encode(), json.dumps(value).encode()
        )
        return batch

    async def signatures(
        self, index: int, batch: Batch, view: CommitteeView | None = None
    ) -> dict[str, Signature]:
        """Published signatures over exactly ``batch``, by recovered node address (only the
        members of ``view`` with stake to count, if given)."""
        kvs, _, _ = await self.etcd.get_range(sigs_prefix(index), prefix_end(sigs_prefix(index)))
        digest = batch.digest(self.ledger.domain_separator)
        found: dict[str, Signature] = {}
        for kv in kvs:
            d = json.loads(kv.value)
            sig = Signature(int(d["v"]), bytes.fromhex(d["r"]), bytes.fromhex(d["s"]))
            signer = recover_address(digest, sig)
            if signer is None:
                continue
            node = "0x" + signer.hex()
            if view is None or view.stake_by_node.get(node, 0) > 0:
                found[node] = sig
        return found

    async def settle(self, b: Boundary, view: CommitteeView, timeout: float = 30.0) -> bool:
        """Sign ``b``, wait for a quorum of signatures, and commit it when this node's turn in
        the rotation comes and nobody has yet; sign again if the committee's epoch moves on
        meanwhile (the wait starts over)."""
        batch = await self.sign(b, view.epoch)
        loop = asyncio.get_running_loop()
        rank = view.rank(b.index, self.signer.address)
        deadline = loop.time() + timeout
        epoch_check_at = loop.time() + self.epoch_check
        quorum_at: float | None = None
        while loop.time() < deadline:
            if loop.time() >= epoch_check_at:
                epoch_check_at = loop.time() + self.epoch_check
                epoch = (await asyncio.to_thread(self.selector.current_committee)).epoch
                if epoch != view.epoch:
                    log.info(
                        "batch %d-%d: the committee moved to epoch %d; signing it again",
                        b.first, b.last, epoch,
                    )  # fmt: skip
                    view = await asyncio.to_thread(self.committee)
                    batch = await self.sign(b, view.epoch)
                    rank = view.rank(b.index, self.signer.address)
                    deadline, quorum_at = loop.time() + timeout, None
            if quorum_at is None:
                sigs = await self.signatures(b.index, batch, view)
                if view.has_quorum(set(sigs)):
                    quorum_at = loop.time()
            if quorum_at is not None:
                last, _, _ = await asyncio.to_thread(self.ledger.last_committed)
                if last >= batch.last_sequence:
                    return True
                if loop.time() - quorum_at >= rank * self.grace:
                    sigs = await self.signatures(b.index, batch, view)
                    await self._commit(batch, sigs, rank)
                    return True
                await asyncio.sleep(0.25)
                continue
            await asyncio.sleep(0.1)
        log.warning("batch %d-%d: no quorum of signatures within %ss", b.first, b.last, timeout)
        return False

    async def _commit(self, batch: Batch, sigs: dict[str, Signature], rank: int) -> None:
        try:
            await asyncio.to_thread(self.ledger.commit_batch, batch, list(sigs.values()))
        except ContractRevertError as exc:
            # refused at estimation (nothing sent) unless the receipt says it was mined
            mined = "tx" in exc.args_by_name
            if mined:
                self.submissions.append((batch, True))
            log.info(
                "batch %d-%d not committed by us (rank %d): %s",
                batch.first_sequence,
                batch.last_sequence,
                rank,
                exc,
            )
            return
        except ChainError as exc:
            log.info(
                "batch %d-%d not committed by us: %s",
                batch.first_sequence,
                batch.last_sequence,
                exc,
            )
            return
        self.submissions.append((batch, False))
        self.committed.append(batch)
        log.info("committed batch %d-%d (rank %d)", batch.first_sequence, batch.last_sequence, rank)

    async def run(self, node: Node) -> None:
        while True:
            b = await node.boundaries.get()
            if not node.serving:  # a diverged node's root is not the venue's: sign nothing
                log.warning("batch at chunk %d not signed: %s", b.index, node.diverged)
                continue
            while node.serving and not await self._settle_once(b):  # never skipped: the
                await asyncio.sleep(1.0)  # ledger takes contiguous ranges only

    async def _settle_once(self, b: Boundary) -> bool:
        """One attempt at ``b``: True once it is settled (by anyone) or was tried to the end."""
        try:
            view = await asyncio.to_thread(self.committee)
            if await self.settle(b, view):
                return True
            last, _, _ = await asyncio.to_thread(self.ledger.last_committed)
            return last >= b.last
        except (EtcdError, ChainError, OSError) as exc:
            log.warning("batch at chunk %d not settled yet: %s", b.index, exc)
            return False


def build_settler(settings: Settings, chain: ChainSettings, etcd: EtcdClient) -> Settler:
    w3 = connect(chain.rpc_url)
    node_key = _key(chain.node_keystore, chain.node_password_file, chain.dev_node_key)
    submitter = _key(
        chain.submitter_keystore, chain.submitter_password_file, chain.dev_submitter_key
    )
    return Settler(
        settings.node_id,
        etcd,
        Signer(bytes(node_key.key)),
        SettlementClient(w3, chain.settlement, submitter),
        SelectorClient(w3, chain.selector),
        RegistryClient(w3, chain.registry),
        grace=chain.submit_grace,
    )


def start_settler(settings: Settings, node: Node) -> asyncio.Task[None] | None:
    if settings.chain is None:
        return None
    settler = build_settler(settings, settings.chain, node.etcd)
    return asyncio.create_task(settler.run(node))
