"""Settlement batches: accepted only with node signatures of > 2/3 of the committee stake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractEvent

from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy import chain
from redundancy.batches import Batch, sorted_for_submission
from redundancy.domains import Kind
from redundancy.eip712 import Signature, Signer
from redundancy.errors import ContractRevertError
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.conftest import advance_time
from validator.node.settler import Settler

ETH = 10**18
SITES = [
    FacilitySpec(
        f"s{i}", f"g{i}", f"m{i}", f"c{i}", 10_000_000 * i, 10_000_000 * i, f"as{i}", f"p{i}"
    )
    for i in range(4)
]
# stakes 30/30/20/10 (total 90): 30 + 30 = 60 is exactly 2/3, not more; 30 + 30 + 10 = 70 is
VALIDATORS = [
    ValidatorSpec(f"sv{i}", f"s{i}", stake * ETH) for i, stake in enumerate((30, 30, 20, 10))
]
ROOT = bytes.fromhex("ab" * 32)
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class Setup:
    ledger: SettlementClient
    selector: SelectorClient
    nodes: list[Signer]
    world: World


@pytest.fixture
def setup(w3: Web3, registry: RegistryClient, owner: LocalAccount) -> Setup:
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(4), GeographyPolicy(min_epoch_seconds=60)
    )
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    selector.select_committee(sender=owner)
    nodes = [Signer(bytes(world.validators[v.name].node().key)) for v in VALIDATORS]
    return Setup(ledger, selector, nodes, world)


def sigs(setup: Setup, batch: Batch, which: list[int]) -> list[Signature]:
    return [setup.nodes[i].sign(setup.ledger.domain_separator, batch) for i in which]


def refused(
    setup: Setup,
    batch: Batch,
    signatures: list[Signature],
    sender: LocalAccount,
    presorted: bool = False,
) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as caught:
        if presorted:
            fn = setup.ledger.contract.functions.commitBatch(
                batch.as_tuple(), [(s.v, s.r, s.s) for s in signatures]
            )
            setup.ledger.tx.send(fn, sender)
        else:
            setup.ledger.commit_batch(batch, signatures, sender=sender)
    return caught.value


def test_digest_matches_contract(setup: Setup) -> None:
    contract = setup.ledger.contract.functions
    assert contract.domainSeparator().call() == setup.ledger.domain_separator
    batch = Batch(1, 1, 100, ROOT)
    ours = batch.digest(setup.ledger.domain_separator)
    assert contract.batchDigest(batch.as_tuple()).call() == ours


def test_ledger_describes_its_domain_per_eip5267(setup: Setup, w3: Web3) -> None:
    ledger = setup.ledger.contract.functions
    assert ledger.eip712Domain().call() == [
        b"\x0f",
        "SettlementLedger",
        "1",
        w3.eth.chain_id,
        setup.ledger.address,
        bytes(32),
        [],
    ]
    assert ledger.domainSeparator().call() == setup.ledger.domain_separator


def test_quorum_batch_is_committed_and_chains(setup: Setup, relayer: LocalAccount) -> None:
    batch = Batch(1, 1, 100, ROOT)
    receipt = setup.ledger.commit_batch(batch, sigs(setup, batch, [0, 1, 3]), sender=relayer)
    (args,) = setup.ledger.events_in(receipt, "BatchCommitted")
    assert (
        args["batchNumber"],
        args["epoch"],
        args["firstSequence"],
        args["lastSequence"],
        args["stateRoot"],
    ) == (1, 1, 1, 100, ROOT)
    assert (args["signedStake"], args["totalStake"]) == (70 * ETH, 90 * ETH)
    assert sorted(args["signers"]) == sorted(VALIDATORS[i].account().address for i in (0, 1, 3))
    assert setup.ledger.last_committed() == (100, ROOT, 1)
    nxt = Batch(1, 101, 150, bytes(32))
    setup.ledger.commit_batch(nxt, sigs(setup, nxt, [0, 1, 2]), sender=relayer)
    assert setup.ledger.last_committed()[0] == 150


def test_two_thirds_exactly_is_not_enough(setup: Setup, relayer: LocalAccount) -> None:
    batch = Batch(1, 1, 10, ROOT)
    err = refused(setup, batch, sigs(setup, batch, [0, 1]), relayer)  # 60 of 90
    assert (err.error_name, err.args_by_name) == (
        "SettlementInsufficientStake",
        {"signedStake": 60 * ETH, "totalStake": 90 * ETH},
    )
    assert setup.ledger.last_committed() == (0, bytes(32), 0)


def test_a_member_that_withdraws_mid_epoch_loses_its_signing_weight(
    setup: Setup, registry: RegistryClient, relayer: LocalAccount, owner: LocalAccount, w3: Web3
) -> None:
    """Findings 7 and 20 (unbonding): the largest member withdraws its 30 ETH mid-epoch and
    registers again on the same node, with 1 wei or with its whole 30 ETH (a flash re-bond:
    bond, commit, withdraw). Either way it has not kept its stake bonded since the epoch
    started, so its signature weighs nothing: the three signatures that made a quorum before
    (30 + 30 + 10 of 90) no longer do. A member that withdrew and stayed out is not a member
    at all. The node's settler counts the same way."""
    leaver, gone = VALIDATORS[0], VALIDATORS[3]
    advance_time(w3, 1)  # mid-epoch: a later second than the selection's
    registry.deregister_validator(sender=leaver.account())
    registry.register_validator(SITES[0].facility_id, leaver.node(), 1, sender=leaver.account())
    batch = Batch(1, 1, 10, ROOT)
    no_etcd: Any = None  # the settler's count reads the chain only
    settler = Settler("n0", no_etcd, setup.nodes[0], setup.ledger, setup.selector, registry)
    addresses = {n.address.lower() for n in setup.nodes}
    for stake in (1, 30 * ETH):
        if stake != 1:
            registry.deregister_validator(sender=leaver.account())
            registry.register_validator(
                SITES[0].facility_id, leaver.node(), stake, sender=leaver.account()
            )
        assert registry.validator_info(leaver.account().address).stake == stake
        err = refused(setup, batch, sigs(setup, batch, [0, 1, 3]), relayer)
        assert (err.error_name, err.args_by_name) == (
            "SettlementInsufficientStake",
            {"signedStake": 40 * ETH, "totalStake": 90 * ETH},
        )
        view = settler.committee()
        assert view.signed_stake(addresses) == 60 * ETH and view.total == 90 * ETH
        assert not view.has_quorum({setup.nodes[i].address for i in (0, 1, 3)})
    registry.deregister_validator(sender=gone.account())
    err = refused(setup, batch, sigs(setup, batch, [0, 1, 2, 3]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementNotMember",
        {"signer": setup.nodes[3].address.lower()},
    )
    err = refused(setup, batch, sigs(setup, batch, [0, 1, 2]), relayer)
    assert err.args_by_name == {"signedStake": 50 * ETH, "totalStake": 90 * ETH}
    assert not settler.committee().has_quorum({setup.nodes[i].address for i in (0, 1, 2)})
    # liveness comes back with the next committee, selected from the stake bonded now: the
    # leaver, bonded for a minimum epoch by then, is in it and weighs its stake again
    advance_time(w3, 61)
    setup.selector.select_committee(sender=owner)
    batch = Batch(2, 1, 10, ROOT)
    assert settler.committee().has_quorum({setup.nodes[i].address for i in (0, 1)})
    receipt = setup.ledger.commit_batch(batch, sigs(setup, batch, [0, 1]), sender=relayer)
    (args,) = setup.ledger.events_in(receipt, "BatchCommitted")
    assert (args["signedStake"], args["totalStake"]) == (60 * ETH, 80 * ETH)


def test_non_member_and_forged_signatures_are_refused(
    setup: Setup, relayer: LocalAccount, outsider: LocalAccount
) -> None:
    batch = Batch(1, 1, 10, ROOT)
    stranger = Signer(bytes(outsider.key))
    err = refused(
        setup,
        batch,
        [*sigs(setup, batch, [0, 1]), stranger.sign(setup.ledger.domain_separator, batch)],
        relayer,
    )
    assert (err.error_name, err.args_by_name) == (
        "SettlementNotMember",
        {"signer": stranger.address.lower()},
    )
    other = Batch(1, 1, 10, bytes.fromhex("cd" * 32))  # signed a different root
    err = refused(setup, batch, [*sigs(setup, batch, [0, 1]), *sigs(setup, other, [3])], relayer)
    assert err.error_name == "SettlementNotMember"  # recovers to some unrelated address


def test_duplicate_and_unsorted_signers_are_refused(setup: Setup, relayer: LocalAccount) -> None:
    batch = Batch(1, 1, 10, ROOT)
    one = sigs(setup, batch, [0])[0]
    err = refused(setup, batch, [one, one], relayer, presorted=True)
    assert (err.error_name, err.args_by_name) == (
        "SettlementDuplicateSigner",
        {"signer": setup.nodes[0].address.lower()},
    )
    ordered = sorted(sigs(setup, batch, [0, 1, 3]), key=lambda s: 0)  # keep signing order
    ascending = sorted_for_submission(setup.ledger.domain_separator, batch, ordered)
    err = refused(setup, batch, list(reversed(ascending)), relayer, presorted=True)
    assert err.error_name == "SettlementSignersUnsorted"


def test_stale_committee_wrong_range_and_bad_signature(
    setup: Setup, relayer: LocalAccount, owner: LocalAccount, w3: Web3
) -> None:
    for unknown in (Batch(2, 1, 10, ROOT), Batch(0, 1, 10, ROOT)):
        err = refused(setup, unknown, sigs(setup, unknown, [0, 1, 2]), relayer)
        assert (err.error_name, err.args_by_name) == (
            "SettlementUnknownEpoch",
            {"epoch": unknown.epoch, "currentEpoch": 1},
        )
    gap = Batch(1, 5, 10, ROOT)
    err = refused(setup, gap, sigs(setup, gap, [0, 1, 2]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementWrongRange",
        {"firstSequence": 5, "lastSequence": 10, "expectedFirst": 1},
    )
    backwards = Batch(1, 1, 0, ROOT)
    assert (
        refused(setup, backwards, sigs(setup, backwards, [0, 1, 2]), relayer).error_name
        == "SettlementWrongRange"
    )
    batch = Batch(1, 1, 10, ROOT)
    bad = Signature(27, bytes(32), sigs(setup, batch, [0])[0].s)
    err = refused(setup, batch, [bad], relayer, presorted=True)
    assert (err.error_name, err.args_by_name) == ("SettlementInvalidSignature", {"index": 0})
    # the malleable twin (r, n - s, flipped v) recovers the same key but is refused, as is a bad v
    good = sigs(setup, batch, [0, 1])
    twin = Signature(
        55 - good[1].v, good[1].r, (ORDER - int.from_bytes(good[1].s, "big")).to_bytes(32, "big")
    )
    err = refused(setup, batch, [good[0], twin], relayer, presorted=True)
    assert (err.error_name, err.args_by_name) == ("SettlementInvalidSignature", {"index": 1})
    bad_v = Signature(29, good[0].r, good[0].s)
    err = refused(setup, batch, [bad_v], relayer, presorted=True)
    assert (err.error_name, err.args_by_name) == ("SettlementInvalidSignature", {"index": 0})


def test_no_committee_yet(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, relayer: LocalAccount
) -> None:
    selector, _ = SelectorClient.deploy(w3, owner, registry.address)
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    with pytest.raises(ContractRevertError) as caught:
        ledger.commit_batch(Batch(0, 1, 1, ROOT), [], sender=relayer)
    assert caught.value.error_name == "SettlementNoCommittee"


def test_ranges_chain_across_epochs_each_signed_by_its_own_committee(
    setup: Setup, relayer: LocalAccount, owner: LocalAccount, w3: Web3
) -> None:
    """Epoch 1 (all four: 30/30/20/10) commits 1-10; s3's heartbeat lapses and epoch 2 is
    selected without sv3 (30/30/20). Epoch 1 may still commit its tail, 11-20, signed by its
    own committee (sv3 counts there); epoch 2 then chains on at 21 and sv3 does not count in it;
    after epoch 2's first batch, epoch 1 is stale."""
    first = Batch(1, 1, 10, ROOT)
    setup.ledger.commit_batch(first, sigs(setup, first, [0, 1, 3]), sender=relayer)
    advance_time(w3, 121)
    live = [p for spec in SITES[:3] for p in setup.world.facility_proofs(spec, [Kind.HEALTH])]
    setup.world.submit(live, owner)
    setup.selector.select_committee(sender=owner)
    everyone = [v.account().address for v in VALIDATORS]
    assert setup.selector.committee_at(1).members == everyone
    assert setup.selector.committee_at(2).members == everyone[:3]
    assert setup.selector.committee_at(3).members == []
    # epoch 1's tail, signed by epoch 1's committee: sv3 still counts (30 + 30 + 10 of 90)
    tail = Batch(1, 11, 20, ROOT)
    receipt = setup.ledger.commit_batch(tail, sigs(setup, tail, [0, 1, 3]), sender=relayer)
    (args,) = setup.ledger.events_in(receipt, "BatchCommitted")
    assert (args["epoch"], args["signedStake"], args["totalStake"]) == (1, 70 * ETH, 90 * ETH)
    # epoch 2: no gap, no overlap, and sv3 is not a member of it
    for bad in (Batch(2, 22, 30, ROOT), Batch(2, 15, 30, ROOT)):
        err = refused(setup, bad, sigs(setup, bad, [0, 1, 2]), relayer)
        assert (err.error_name, err.args_by_name["expectedFirst"]) == ("SettlementWrongRange", 21)
    nxt = Batch(2, 21, 30, ROOT)
    err = refused(setup, nxt, sigs(setup, nxt, [0, 1, 3]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementNotMember",
        {"signer": setup.nodes[3].address.lower()},
    )
    receipt = setup.ledger.commit_batch(nxt, sigs(setup, nxt, [0, 1]), sender=relayer)
    (args,) = setup.ledger.events_in(receipt, "BatchCommitted")
    assert (args["epoch"], args["signedStake"], args["totalStake"]) == (2, 60 * ETH, 80 * ETH)
    assert setup.ledger.last_epoch() == 2 and setup.ledger.last_committed()[0] == 30
    # epoch 1 can no longer commit, even contiguous and signed by its whole committee
    late = Batch(1, 31, 40, ROOT)
    err = refused(setup, late, sigs(setup, late, [0, 1, 2, 3]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementStaleCommittee",
        {"epoch": 1, "lastEpoch": 2},
    )
    ahead = Batch(3, 31, 40, ROOT)
    err = refused(setup, ahead, sigs(setup, ahead, [0, 1, 2]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementUnknownEpoch",
        {"epoch": 3, "currentEpoch": 2},
    )
    batches = setup.ledger.committed_batches()
    ranges = [(b.batch.epoch, b.batch.first_sequence, b.batch.last_sequence) for b in batches]
    assert ranges == [(1, 1, 10), (1, 11, 20), (2, 21, 30)]
    # read in ranges of at most LOG_RANGE blocks (RPC endpoints refuse wide ones), same answer
    asked: list[tuple[int, int]] = []
    get_logs = ContractEvent.__dict__["get_logs"]  # a combomethod: bind it to the instance

    def spy(self: ContractEvent, *, from_block: int, to_block: int, **kw: Any) -> Any:
        asked.append((from_block, to_block))
        return get_logs.__get__(self, type(self))(from_block=from_block, to_block=to_block, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain, "LOG_RANGE", 2)
        patch.setattr(ContractEvent, "get_logs", spy)
        assert setup.ledger.committed_batches() == batches
    head = w3.eth.block_number
    assert asked[0][0] == 0 and asked[-1][1] == head and len(asked) == head // 2 + 1
    assert all(b - a == 1 for a, b in asked[:-1])
    # only the current and the previous committee are kept: two selections on, epoch 2 is gone
    for _ in range(2):
        advance_time(w3, 61)
        setup.world.refresh(owner)
        setup.selector.select_committee(sender=owner)
    assert setup.selector.current_committee().epoch == 4
    assert setup.selector.committee_at(2).members == []
    assert setup.selector.committee_at(3).members == everyone  # sv3 beats again
    old = Batch(2, 31, 40, ROOT)
    err = refused(setup, old, sigs(setup, old, [0, 1, 2]), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SettlementEpochExpired",
        {"epoch": 2, "currentEpoch": 4},
    )
    prev = Batch(3, 31, 40, ROOT)  # the previous epoch may still commit its tail
    setup.ledger.commit_batch(prev, sigs(setup, prev, [0, 1, 3]), sender=relayer)
    assert setup.ledger.last_epoch() == 3
