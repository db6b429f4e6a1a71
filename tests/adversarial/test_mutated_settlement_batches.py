"""Random mutations of valid settlement batches against the SettlementLedger.

A committee of four validators (stakes 30/30/20/10: quorum is more than 60) is selected once.
Each case draws a valid batch (the next range, a random length and state root) signed by a
random quorum, sorted by signer, then a mutation: another epoch, a range with a gap, an
overlap or backwards, the state root changed after signing, signers dropped to 2/3 of the stake
or less, a signature duplicated, one by a key that is no member's node key (a stranger, a
member's validator account, an unrelated batch, a foreign domain), the signatures out of order,
one malleated to its high-s twin, or a bit flipped in one signature's v, r or s. The mutant
goes to ``commitBatch`` estimated and mined unestimated: both must revert with the custom error
the oracle (the ledger's check order in Python) predicts, log nothing, change nothing in the
ledger, and leave ``lastCommitted()`` as it was. Then the valid batch commits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import event, given
from hypothesis import strategies as st
from web3 import Web3

from devnet.world import FacilitySpec, ValidatorSpec, build
from redundancy.batches import Batch, ledger_domain_separator
from redundancy.eip712 import Signature, Signer, recover_address
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.adversarial import tally
from tests.adversarial.mutations import (
    HALF_ORDER,
    ORDER,
    Draw,
    Refusal,
    differs,
    flip_bit,
    matches,
)
from tests.adversarial.rawtx import mine, refusals

ETH = 10**18
U64 = (1 << 64) - 1
SITES = [
    FacilitySpec(
        f"b{i}", f"g{i}", f"m{i}", f"c{i}", 10_000_000 * i, 10_000_000 * i, f"as{i}", f"p{i}"
    )
    for i in range(4)
]
STAKES = (30, 30, 20, 10)
VALIDATORS = [ValidatorSpec(f"bv{i}", f"b{i}", s * ETH) for i, s in enumerate(STAKES)]
#: Signer subsets holding more than 2/3 of the stake, and those holding no more.
QUORUMS = [
    s
    for n in range(5)
    for s in itertools.combinations(range(4), n)
    if 3 * sum(STAKES[i] for i in s) > 2 * sum(STAKES)
]
SHORT = [s for n in range(5) for s in itertools.combinations(range(4), n) if s not in QUORUMS]

Sig = tuple[int, bytes, bytes]  # (v, r, s) as commitBatch takes it


@dataclass
class Ledger:
    w3: Web3
    ledger: SettlementClient
    relayer: LocalAccount
    epoch: int
    nodes: list[Signer]  # by validator index
    accounts: list[Signer]  # the validators' own (non-node) keys
    stake_of: dict[str, int]  # node address -> selected stake
    total: int


@pytest.fixture(scope="module")
def bench(w3: Web3, owner: LocalAccount, relayer: LocalAccount) -> Ledger:
    registry, _ = RegistryClient.deploy(w3, owner)
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(4), GeographyPolicy(min_epoch_seconds=60)
    )
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    selector.select_committee(sender=owner)
    committee = selector.current_committee()
    nodes = [Signer(bytes(world.validators[v.name].node().key)) for v in VALIDATORS]
    accounts = [Signer(bytes(v.account().key)) for v in VALIDATORS]
    stake_of = {}
    for member, stake in zip(committee.members, committee.stakes, strict=True):
        stake_of[registry.validator_info(member).node] = stake
    assert sorted(stake_of) == sorted(n.address for n in nodes)
    return Ledger(
        w3, ledger, relayer, committee.epoch, nodes, accounts, stake_of, sum(stake_of.values())
    )


def sign(signers: list[Signer], ds: bytes, batch: Batch) -> list[Sig]:
    """Signatures by ``signers``, sorted by signer address as the ledger requires."""
    ordered = sorted(signers, key=lambda s: int(s.address, 16))
    return [(sig.v, sig.r, sig.s) for sig in (s.sign(ds, batch) for s in ordered)]


def verdict(bench: Ledger, last: int, batch: Batch, sigs: list[Sig]) -> Refusal | None:
    """The ledger's checks in order: the error it must revert with, or None to accept."""
    if batch.epoch == 0 or batch.epoch > bench.epoch:
        return "SettlementUnknownEpoch", {"epoch": batch.epoch, "currentEpoch": bench.epoch}
    if batch.epoch != bench.epoch:  # an earlier epoch: the bench selects only one
        raise AssertionError(f"the bench has no epoch {batch.epoch} committee to predict by")
    first, final = batch.first_sequence, batch.last_sequence
    if first != last + 1 or final < first:
        return "SettlementWrongRange", {
            "firstSequence": first,
            "lastSequence": final,
            "expectedFirst": last + 1,
        }
    digest = batch.digest(bench.ledger.domain_separator)
    previous, signed = 0, 0
    for i, (v, r, s) in enumerate(sigs):
        raw = recover_address(digest, Signature(v, r, s))
        if raw is None:
            return "SettlementInvalidSignature", {"index": i}
        signer = int.from_bytes(raw, "big")
        address = "0x" + raw.hex()
        if signer == previous:
            return "SettlementDuplicateSigner", {"signer": address}
        if signer < previous:
            return "SettlementSignersUnsorted", {
                "previous": f"0x{previous:040x}",
                "signer": address,
            }
        previous = signer
        stake = bench.stake_of.get(Web3.to_checksum_address(raw))
        if stake is None:
            return "SettlementNotMember", {"signer": address}
        signed += stake
    if 3 * signed <= 2 * bench.total:
        return "SettlementInsufficientStake", {"signedStake": signed, "totalStake": bench.total}
    return None


@st.composite
def valid_batches(draw: st.DrawFn, bench: Ledger, last: int) -> tuple[Batch, list[int]]:
    """The next batch, signed by a random quorum (indices of the signing validators)."""
    batch = Batch(
        bench.epoch,
        last + 1,
        last + draw(st.integers(1, 1_000)),
        draw(st.binary(min_size=32, max_size=32)),
    )
    return batch, list(draw(st.sampled_from(QUORUMS)))


MUTATIONS = [
    "epoch",
    "gap",
    "overlap",
    "backwards",
    "state root",
    "below quorum",
    "duplicate",
    "non-member",
    "unsorted",
    "malleated",
    "bit flip",
]
strangers = st.integers(1, ORDER - 1).map(lambda k: Signer(k.to_bytes(32, "big")))


def mutate(
    how: str, draw: Draw, bench: Ledger, last: int, batch: Batch, quorum: list[int]
) -> tuple[str, Batch, list[Sig]]:
    ds = bench.ledger.domain_separator
    nodes = [bench.nodes[i] for i in quorum]
    sigs = sign(nodes, ds, batch)
    b = batch
    if how == "epoch":
        epoch = differs(draw(st.integers(0, U64)), bench.epoch)
        b = Batch(epoch, batch.first_sequence, batch.last_sequence, batch.state_root)
        return how, b, sign(nodes, ds, b) if draw(st.booleans()) else sigs
    if how in ("gap", "overlap", "backwards"):
        expected = last + 1
        if how == "gap":
            first = min(U64, expected + draw(st.integers(1, 1 << 63)))
            final = max(first, min(U64, first + draw(st.integers(0, 1_000))))
        elif how == "overlap":
            first = max(0, expected - draw(st.integers(1, 1 << 63)))
            final = draw(st.sampled_from([first, batch.last_sequence, min(U64, first + 1_000)]))
        else:
            first = expected
            final = max(0, first - draw(st.integers(1, 1 << 63)))
        b = Batch(batch.epoch, first, final, batch.state_root)
        return how, b, sign(nodes, ds, b)
    if how == "state root":
        root = differs(draw(st.binary(min_size=32, max_size=32)), batch.state_root)
        b = Batch(batch.epoch, batch.first_sequence, batch.last_sequence, root)
        return how, b, sigs  # signed by the quorum over the old root
    if how == "below quorum":
        short = draw(st.sampled_from(SHORT))
        return how, batch, sign([bench.nodes[i] for i in short], ds, batch)
    if how == "duplicate":
        i = draw(st.integers(0, len(sigs) - 1))
        at = draw(st.integers(0, len(sigs)))
        return how, batch, [*sigs[:at], sigs[i], *sigs[at:]]
    if how == "non-member":
        kind = draw(
            st.sampled_from(["stranger", "validator account", "other batch", "foreign domain"])
        )
        if kind == "stranger":
            extra = draw(strangers).sign(ds, batch)
        elif kind == "validator account":  # a member's own key, not its node key
            extra = draw(st.sampled_from(bench.accounts)).sign(ds, batch)
        elif kind == "other batch":
            other = Batch(
                batch.epoch,
                batch.first_sequence,
                batch.last_sequence,
                differs(draw(st.binary(min_size=32, max_size=32)), batch.state_root),
            )
            extra = draw(st.sampled_from(bench.nodes)).sign(ds, other)
        else:
            chain_id = bench.w3.eth.chain_id
            foreign = draw(
                st.one_of(
                    st.integers(0, (1 << 256) - 1)
                    .map(lambda c: differs(c, chain_id))
                    .map(lambda c: ledger_domain_separator(c, bench.ledger.address)),
                    st.binary(min_size=20, max_size=20)
                    .map(lambda a: differs(a, bytes.fromhex(bench.ledger.address[2:])))
                    .map(lambda a: ledger_domain_separator(chain_id, "0x" + a.hex())),
                )
            )
            extra = draw(st.sampled_from(bench.nodes)).sign(foreign, batch)
        at = draw(st.integers(0, len(sigs)))
        return f"{how} ({kind})", batch, [*sigs[:at], (extra.v, extra.r, extra.s), *sigs[at:]]
    if how == "unsorted":
        order = draw(st.permutations(range(len(sigs))))
        if order == sorted(order):
            order = order[::-1]
        return how, batch, [sigs[i] for i in order]
    i = draw(st.integers(0, len(sigs) - 1))
    v, r, s = sigs[i]
    if how == "malleated":  # the twin (r, n - s, other v) recovers the same key, with high s
        twin = (55 - v, r, (ORDER - int.from_bytes(s, "big")).to_bytes(32, "big"))
        assert int.from_bytes(twin[2], "big") > HALF_ORDER
        return how, batch, [*sigs[:i], twin, *sigs[i + 1 :]]
    part = draw(st.sampled_from(["v", "r", "s"]))
    if part == "v":
        flipped: Sig = (flip_bit(v, draw(st.integers(0, 7))), r, s)
    elif part == "r":
        flipped = (v, flip_bit(r, draw(st.integers(0, 255))), s)
    else:
        flipped = (v, r, flip_bit(s, draw(st.integers(0, 255))))
    return f"bit flip in {part}", batch, [*sigs[:i], flipped, *sigs[i + 1 :]]


@pytest.mark.parametrize("how", MUTATIONS)
@tally.timeout("batches", 1 / len(MUTATIONS))
@tally.profile("batches", 1 / len(MUTATIONS))
@given(data=st.data())
def test_every_mutant_of_a_valid_batch_reverts_and_the_valid_batch_still_commits(
    bench: Ledger, how: str, data: st.DataObject
) -> None:
    ledger = bench.ledger
    mine(bench.w3)
    before = ledger.last_committed()
    last = before[0]
    batch, quorum = data.draw(valid_batches(bench, last), label="valid batch")
    how, mutant, sigs = mutate(how, data.draw, bench, last, batch, quorum)
    valid_sigs = sign([bench.nodes[i] for i in quorum], ledger.domain_separator, batch)
    assert verdict(bench, last, batch, valid_sigs) is None, "the valid batch is not valid"
    assert (mutant, sigs) != (batch, valid_sigs), "not a mutation"
    expected = verdict(bench, last, mutant, sigs)
    assert expected is not None, f"the generator made a valid batch ({how})"
    event(how)
    event(expected[0])

    fn = ledger.contract.functions.commitBatch(mutant.as_tuple(), sigs)
    for err in refusals(ledger, fn, bench.relayer):
        assert matches(err, expected), (how, err, expected)
    assert ledger.last_committed() == before

    good = ledger.contract.functions.commitBatch(batch.as_tuple(), valid_sigs)
    receipt = ledger.tx.send(good, bench.relayer)
    (committed,) = ledger.events_in(receipt, "BatchCommitted")
    assert committed["stateRoot"] == batch.state_root
    assert ledger.last_committed() == (batch.last_sequence, batch.state_root, before[2] + 1)
    tally.count("batches")
