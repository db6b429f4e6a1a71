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

The ledger decides what is settled: a commit that failed (no funds, no receipt in time, a revert)
is tried again a rotation later (each rank keeps its slot: one node at a time) until the
ledger's ``lastCommitted`` covers the batch. A batch is forgotten (the node's signature
deleted, its held snapshot free to move past it) only once its commit is ``confirmations``
blocks deep; one a reorganisation took off the chain is signed and committed again. Boundaries
reached before a restart are read back from the roots this node published (``recover``), so a
restart loses none. Malformed entries beside the signatures are skipped.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.exceptions import BadFunctionCallOutput, Web3Exception

from redundancy.batches import Batch
from redundancy.chain import connect, gwei, one_line
from redundancy.eip712 import Signature, Signer, recover_address
from redundancy.errors import ChainError, ContractRevertError, KeystoreError
from redundancy.keystore import load_account, passphrase_file
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient, prefix_end
from validator.node.follower import Boundary, Node, tally
from validator.node.inputlog import roots_prefix, sigs_prefix
from validator.node.settings import ChainSettings, Settings

log = logging.getLogger("validator.node.settler")


def _key(keystore: Path | None, password: Path | None, dev_key: str | None) -> LocalAccount:
    if keystore is not None and password is not None:
        return load_account(keystore, passphrase_file(password, whole=True))
    if dev_key is not None:
        try:
            account: LocalAccount = Account.from_key(dev_key)
        except (ValueError, TypeError):  # never echo a key, even a malformed one
            raise KeystoreError("a dev key is not a valid secp256k1 private key") from None
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


class _CommitsUndone(Exception):
    """Batches committed before the one being settled are no longer on the chain's head."""

    def __init__(self, batches: list[Boundary]) -> None:
        super().__init__(f"{len(batches)} commits undone")
        self.batches = batches


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
        confirmations: int = 0,
    ) -> None:
        self.node_id = node_id
        self.grace = grace
        self.epoch_check = epoch_check
        self.confirmations = confirmations
        """Blocks a commit must be under before its batch counts as settled (``_settled``)."""
        self._unconfirmed: collections.deque[Boundary] = collections.deque()
        """Committed at the head, not yet ``confirmations`` blocks deep: signatures kept."""
        self.etcd = etcd
        self.signer = signer
        self.ledger = ledger
        self.selector = selector
        self.registry = registry
        self.committed: list[Batch] = []
        #: (batch, reverted) of every commit this node sent
        self.submissions: list[tuple[Batch, bool]] = []

    def committee(self) -> CommitteeView:
        """The ledger's count: each member weighs min(stake at selection, stake bonded without a
        break since the selection: none if it bonded again since) against the committee's total
        at selection."""
        block = self.selector.w3.eth.block_number  # every read at one block
        c = self.selector.current_committee(block)
        bonds = self.selector.committee_at(c.epoch, block).bonds
        nodes: dict[str, int] = {}
        for m, selected in zip(c.members, c.stakes, strict=True):
            info = self.registry.validator_info(m, block)
            bonded = 0 if info.bond_seq > bonds else info.stake
            nodes[info.node.lower()] = min(selected, bonded)
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
            try:
                d = json.loads(kv.value)
                sig = Signature(int(d["v"]), bytes.fromhex(d["r"]), bytes.fromhex(d["s"]))
            # anyone with etcd access wrote it (RecursionError: nested past the parser's limit)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                log.warning("signature entry %r skipped: malformed (%s)", kv.key, one_line(exc))
                continue
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
        meanwhile (the wait starts over). A batch the ledger has already is not signed (the
        others' signatures of it may be deleted: a late node would wait for a quorum in vain)."""
        if await self._committed(Batch(view.epoch, b.first, b.last, b.root)):
            return True
        batch = await self.sign(b, view.epoch)
        loop = asyncio.get_running_loop()
        rank = view.rank(b.index, self.signer.address)
        deadline = loop.time() + timeout
        epoch_check_at = loop.time() + self.epoch_check
        quorum_at: float | None = None
        turn_at = deadline
        """When this node submits (its rank's grace after the quorum), or tries again."""
        while loop.time() < deadline:
            if loop.time() >= epoch_check_at:
                epoch_check_at = loop.time() + self.epoch_check
                if await self._earlier_undone():  # b can only commit after it: give way
                    log.info(
                        "batch %d-%d: an earlier batch's commit is off the chain; it goes first",
                        b.first, b.last,
                    )  # fmt: skip
                    return False
                # committed meanwhile by the others, who then delete their signatures: this
                # node would never see the quorum and wait out its whole timeout
                if quorum_at is None and await self._committed(batch):
                    return True
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
                    turn_at = quorum_at + rank * self.grace
            if quorum_at is not None:
                if await self._committed(batch):
                    return True
                if loop.time() >= turn_at:
                    sigs = await self.signatures(b.index, batch, view)
                    await self._commit(batch, sigs, rank)
                    if await self._committed(batch):
                        return True
                    # not committed (refused, not mined, out of funds...): the ledger decides,
                    # not our attempt; try again a whole rotation later, with the signatures
                    # then. A grace later, every rank whose turn had come retried at the same
                    # moment: on a chain with block times, one commit and the rest reverted.
                    while turn_at <= loop.time():  # the same slot, one rotation on
                        turn_at += max(1, len(view.stake_by_node)) * self.grace
                await asyncio.sleep(0.25)
                continue
            await asyncio.sleep(0.1)
        if quorum_at is None:
            log.warning("batch %d-%d: no quorum of signatures within %ss", b.first, b.last, timeout)
        else:
            log.warning(
                "batch %d-%d: signed by a quorum but not committed within %ss (see the commit "
                "attempts above); trying again", b.first, b.last, timeout,
            )  # fmt: skip
        return False

    async def _committed(self, batch: Batch) -> bool:
        """Whether the ledger has the batch at the chain's head (stop waiting, send nothing)."""
        last, _, _ = await asyncio.to_thread(self.ledger.last_committed)
        return last >= batch.last_sequence

    def _settled(self) -> int:
        """The ledger's last committed sequence ``confirmations`` blocks below the head: what
        the node may forget (its signature, the snapshot it holds, the log below). A commit only
        at the head could still be undone by a reorganisation, and then be needed again."""
        if self.confirmations == 0:
            return self.ledger.last_committed()[0]
        w3 = self.ledger.w3
        block = max(0, int(w3.eth.block_number) - self.confirmations)
        try:
            return self.ledger.last_committed(block)[0]
        except BadFunctionCallOutput:
            if w3.eth.get_code(self.ledger.address, block):
                raise
            return 0  # the ledger was deployed after that block: it had committed nothing

    async def _commit(self, batch: Batch, sigs: dict[str, Signature], rank: int) -> None:
        """Send the batch; whatever goes wrong is logged, and the ledger says if it landed."""
        try:
            await asyncio.to_thread(self.ledger.commit_batch, batch, list(sigs.values()))
        except ContractRevertError as exc:
            # refused at estimation (nothing sent) unless the receipt says it was mined
            if exc.mined_tx is not None:  # sent and reverted (a decoded error says so too)
                self.submissions.append((batch, True))
            log.info(
                "batch %d-%d not committed by us (rank %d): %s",
                batch.first_sequence,
                batch.last_sequence,
                rank,
                exc,
            )
            return
        except (ChainError, Web3Exception) as exc:  # Web3Exception: e.g. no receipt in time
            log.warning(
                "batch %d-%d not committed by us: %s",
                batch.first_sequence,
                batch.last_sequence,
                one_line(exc),
            )
            return
        self.submissions.append((batch, False))
        self.committed.append(batch)
        log.info("committed batch %d-%d (rank %d)", batch.first_sequence, batch.last_sequence, rank)

    async def run(self, node: Node) -> None:
        if node.settled_through is None:  # a settler runs: the node holds what it has not settled
            node.settled_through = 0
        await node.restored.wait()
        backlog = collections.deque(await self.recover(node))
        self._unconfirmed = collections.deque()
        while True:
            if self._unconfirmed:
                backlog.extendleft(reversed(await self._confirm(node)))
            if backlog:
                b = backlog.popleft()
            elif self._unconfirmed:  # look at the chain again within a second, boundary or not
                try:
                    b = await asyncio.wait_for(node.boundaries.get(), 1.0)
                except TimeoutError:
                    continue
            else:
                b = await node.boundaries.get()
            try:
                why = await self._settle_while_serving(node, b)
            except _CommitsUndone as undone:  # b cannot commit before them: they go first
                backlog.extendleft(reversed([*undone.batches, b]))
                continue
            if why is None:
                self._unconfirmed.append(b)
            else:
                log.warning("batch at chunk %d not signed: %s", b.index, why)

    async def _earlier_undone(self) -> bool:
        """Whether the chain's head no longer has the newest batch this node counts committed
        (a reorganisation took its commit off)."""
        if not self._unconfirmed:
            return False
        head = (await asyncio.to_thread(self.ledger.last_committed))[0]
        return head < self._unconfirmed[-1].last

    async def _confirm(self, node: Node) -> list[Boundary]:
        """Forget the committed batches whose commits are ``confirmations`` blocks deep (the
        node's signature goes, and its held snapshot may move past them); return, oldest first
        and no longer counted committed, those a reorganisation took off the chain: they are to
        be signed and committed again."""
        unconfirmed = self._unconfirmed
        try:
            head = (await asyncio.to_thread(self.ledger.last_committed))[0]
            settled = head
            if self.confirmations:
                try:
                    settled = await asyncio.to_thread(self._settled)
                except (ChainError, OSError, Web3Exception) as exc:  # e.g. a state pruned
                    log.warning("commits not confirmed yet: %s", one_line(exc))
                    settled = -1  # forget nothing now; undone ones are still handed back
        except (ChainError, OSError, Web3Exception) as exc:
            log.warning("commits not confirmed yet: %s", one_line(exc))
            return []
        except Exception:  # a bug must not end settlement for good: say so loudly, go on
            log.exception("commits not confirmed: unexpected error")
            return []
        while unconfirmed and unconfirmed[0].last <= settled:
            b = unconfirmed.popleft()
            node.settled_through = b.index  # its root may go (with compaction)
            await self._forget_signature(b)
        undone = [b for b in unconfirmed if b.last > head]  # a suffix: the ledger is contiguous
        if undone:
            log.warning(
                "batches at chunks %d-%d are no longer committed at the chain's head (a "
                "reorganisation): settling them again",
                undone[0].index, undone[-1].index,
            )  # fmt: skip
            for b in undone:
                unconfirmed.remove(b)
        return undone

    async def _settle_while_serving(self, node: Node, b: Boundary) -> str | None:
        """Settle ``b`` (None), waiting while the node catches up or re-syncs; never skipped
        (the ledger takes contiguous ranges only) unless the node stopped for good or ``b``
        was reached on a state it set aside (why not). Between attempts, the batches committed
        before it are confirmed or, if a reorganisation took them off the chain, handed back
        (_CommitsUndone): ``b`` can only commit after them."""
        while True:
            if node.diverged is not None and node.divergence is None:
                return node.diverged  # stopped for good: its root is not the venue's
            if node.lagging is not None or node.divergence is not None:
                await asyncio.sleep(1.0)  # catching up, or re-syncing: agreed ones stay
                continue
            if not node.signable(b):
                return "reached on a state since set aside (re-synced)"
            if await self._settle_once(b):
                return None
            if self._unconfirmed and (undone := await self._confirm(node)):
                raise _CommitsUndone(undone)
            await asyncio.sleep(1.0)

    async def _forget_signature(self, b: Boundary) -> None:
        """Delete this node's signature of a committed batch (kept, it filled etcd)."""
        try:
            await self.etcd.delete_keys([sigs_prefix(b.index) + self.node_id.encode()])
        except EtcdError as exc:  # left behind: only space
            log.warning("signature of chunk %d not deleted: %s", b.index, exc)

    async def recover(self, node: Node) -> list[Boundary]:
        """The boundaries this node reached before it (re)started that the ledger has not
        committed, oldest first: read back from the roots it published (``roots/<k>/<node>``,
        each written before the snapshot that follows it), from the last boundary at or before
        its restored position down to one the ledger has. Without this, the boundaries queued
        or waiting for a quorum when the node stopped were never signed again, and with a third
        of the stake restarting at once no later batch could ever commit. Only up to the first
        whose root a majority of the committee refutes (a node that stopped for good kept
        publishing the roots of its wrong state: read back, they were signed)."""
        every = node.settings.batch_every
        while True:
            try:
                last = await asyncio.to_thread(self._settled)
                found: list[Boundary] = []
                index = node.restored_at - node.restored_at % every
                while index > 0:
                    kv = await self.etcd.get(roots_prefix(index) + self.node_id.encode())
                    if kv is None:  # not reached by this node (it caught up past it)
                        break
                    d = json.loads(kv.value)
                    if int(d["last"]) <= last:
                        break
                    found.append(
                        Boundary(
                            index,
                            int(d["first"]),
                            int(d["last"]),
                            bytes.fromhex(d["root"]),
                            bytes.fromhex(d["chain"]),
                        )
                    )
                    index -= every
                found = (await self._agreed_prefix(node, found[::-1]))[::-1]
            except (EtcdError, ChainError, OSError, Web3Exception) as exc:
                log.warning("unsettled batches not read yet: %s", one_line(exc))
                await asyncio.sleep(1.0)
                continue
            except (ValueError, KeyError, TypeError, RecursionError) as exc:  # bug or tampering
                log.error("own root entry at chunk %d unreadable (%s); not resumed", index, exc)
            found.reverse()
            if found:
                log.info(
                    "resuming %d unsettled batches from before the restart (chunks %d-%d)",
                    len(found), found[0].index, found[-1].index,
                )  # fmt: skip
            return found

    async def _agreed_prefix(self, node: Node, found: list[Boundary]) -> list[Boundary]:
        """``found`` (oldest first) up to the first boundary whose root a majority of the
        committee refutes."""
        committee = set(node.settings.committee)
        for i, b in enumerate(found):
            kvs, _, _ = await self.etcd.get_range(
                roots_prefix(b.index), prefix_end(roots_prefix(b.index))
            )
            votes = tally(kvs, b.index, committee)
            agreed = next((r for r, n in votes.items() if 2 * n > len(committee)), None)
            if agreed is not None and agreed != b.root.hex():
                log.error(
                    "own root at chunk %d is not the committee's (%s): it and the %d after it "
                    "are not resumed",
                    b.index, agreed, len(found) - i - 1,
                )  # fmt: skip
                return found[:i]
        return found

    async def _settle_once(self, b: Boundary) -> bool:
        """One attempt at ``b``: True once the ledger has it at the chain's head (committed by
        anyone) or it was tried to the end."""
        try:
            if (await asyncio.to_thread(self.ledger.last_committed))[0] >= b.last:
                return True  # e.g. replayed from a held snapshot: no committee to read
            view = await asyncio.to_thread(self.committee)
            if await self.settle(b, view):
                return True
            return await self._committed(Batch(view.epoch, b.first, b.last, b.root))
        except (EtcdError, ChainError, OSError, Web3Exception) as exc:
            log.warning("batch at chunk %d not settled yet: %s", b.index, one_line(exc))
            return False
        except Exception:  # a bug must not end settlement for good: say so loudly, go on
            log.exception("batch at chunk %d: unexpected error while settling", b.index)
            return False


@dataclass(frozen=True)
class SettlerKeys:
    node: LocalAccount
    """Signs batches (its address is the validator's bound node)."""
    submitter: LocalAccount
    """Pays for commitBatch."""


def load_keys(chain: ChainSettings) -> SettlerKeys:
    """The settler's keys, read at start-up: a wrong password stops the node at once."""
    return SettlerKeys(
        _key(chain.node_keystore, chain.node_password_file, chain.dev_node_key),
        _key(chain.submitter_keystore, chain.submitter_password_file, chain.dev_submitter_key),
    )


def build_settler(
    settings: Settings, chain: ChainSettings, etcd: EtcdClient, keys: SettlerKeys | None = None
) -> Settler:
    keys = keys or load_keys(chain)
    w3 = connect(chain.rpc_url)
    ledger = SettlementClient(w3, chain.settlement, keys.submitter)
    ledger.tx.max_fee_per_gas = gwei(chain.max_fee_gwei)
    return Settler(
        settings.node_id,
        etcd,
        Signer(bytes(keys.node.key)),
        ledger,
        SelectorClient(w3, chain.selector),
        RegistryClient(w3, chain.registry),
        grace=chain.submit_grace,
        confirmations=chain.confirmations,
    )


async def _connect_and_run(
    settings: Settings, chain: ChainSettings, node: Node, keys: SettlerKeys
) -> None:
    """Reach the chain (retrying while it is down: the node follows the log meanwhile), then
    settle forever."""
    while True:
        try:
            settler = await asyncio.to_thread(build_settler, settings, chain, node.etcd, keys)
            break
        except (ChainError, OSError, Web3Exception) as exc:
            log.warning("settlement waits for the chain: %s", one_line(exc))
            await asyncio.sleep(2.0)
    await settler.run(node)


def start_settler(
    settings: Settings, node: Node, keys: SettlerKeys | None = None
) -> asyncio.Task[None] | None:
    if settings.chain is None:
        return None
    keys = keys or load_keys(settings.chain)
    task = asyncio.create_task(_connect_and_run(settings, settings.chain, node, keys))
    task.add_done_callback(_ended)
    return task


def _ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("settlement stopped: %r", task.exception())
