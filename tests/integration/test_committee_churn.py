"""The bonding rule (SECURITY.md finding 18): a committee minority that leaves to force emergency
selections cannot come back, under its own address or a fresh one, in the selections it forces,
so it cannot keep voiding signed batches by churning the committee: a validator bonded after the
first committee becomes a candidate only once bonded for the minimum epoch."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import FUNDING, FacilitySpec, ValidatorSpec, World, build
from redundancy import score_verifier
from redundancy.batches import Batch
from redundancy.domains import Dimension, Kind, hardware_domain
from redundancy.eip712 import Signer
from redundancy.errors import ContractRevertError
from redundancy.ledger import SettlementClient
from redundancy.proofs import SignedProof, make_proof, subject_for_node
from redundancy.registry import RegistryClient
from redundancy.selection import DimensionRule, DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.conftest import advance_time
from tests.integration.test_committee import SITES as COMMITTEE_SITES
from tests.integration.test_committee import VALIDATORS as COMMITTEE_VALIDATORS

ETH = 10**18
MIN_EPOCH = 3_600
SITES = [
    FacilitySpec(
        f"s{i}", f"g{i}", f"m{i}", f"c{i}", 10_000_000 * i, 10_000_000 * i, f"as{i}", f"p{i}"
    )
    for i in range(5)
]
# honest 30 + 30 + 20 = 80 of 90; the minority 5 + 5 = 10 of 90 (11%)
VALIDATORS = [
    ValidatorSpec(f"sv{i}", f"s{i}", stake * ETH) for i, stake in enumerate((30, 30, 20, 5, 5))
]
HONEST, MINORITY = VALIDATORS[:3], VALIDATORS[3:]
ROOT = bytes.fromhex("ab" * 32)


def _world(w3: Web3, registry: RegistryClient, owner: LocalAccount) -> tuple[World, SelectorClient]:
    """The five sites and validators, and a selector of five with a one-hour minimum epoch."""
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(
        w3,
        owner,
        registry.address,
        DiversityPolicy(5),
        GeographyPolicy(min_epoch_seconds=MIN_EPOCH),
    )
    return world, selector


def _add(world: World, owner: LocalAccount, spec: ValidatorSpec) -> None:
    """Attest a fresh node at the spec's facility and register a fresh validator on it."""
    world.submit([world.hardware_proof(spec)], owner)
    acct = spec.account()
    world.w3.provider.make_request(  # type: ignore[attr-defined]
        "anvil_setBalance", [acct.address, hex(spec.stake + FUNDING)]
    )
    world.registry.register_validator(
        world.facilities[spec.facility].facility_id, spec.node(), spec.stake, sender=acct
    )


def test_a_minority_that_leaves_cannot_come_back_in_the_selections_it_forces(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, relayer: LocalAccount
) -> None:
    world, selector = _world(w3, registry, owner)
    ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
    selector.select_committee(sender=owner)
    assert len(selector.current_committee().members) == 5
    honest = [Signer(bytes(v.node().key)) for v in HONEST]
    signed = Batch(1, 1, 10, ROOT)
    signatures = [s.sign(ledger.domain_separator, signed) for s in honest]
    minority = {v.account().address for v in MINORITY}

    # each member of the minority leaves (an emergency selection follows) and bonds again at once
    for v in MINORITY:
        advance_time(w3, 1)
        registry.deregister_validator(sender=v.account())
        selector.select_committee(sender=v.account())
        registry.register_validator(
            world.facilities[v.facility].facility_id, v.node(), v.stake, sender=v.account()
        )
        assert v.account().address not in {m.address for m in selector.eligible_candidates()}
    # a fresh address on a fresh node its facility attests is no candidate either
    fresh = ValidatorSpec("sv3-fresh", "s3", 5 * ETH)
    _add(world, owner, fresh)
    candidates = {m.address for m in selector.eligible_candidates()}
    assert candidates == {v.account().address for v in HONEST}
    committee = selector.current_committee()
    assert committee.epoch == 3 and not minority & set(committee.members)

    # two forced selections still cost the batch signed two epochs ago (only two committees are
    # kept) ...
    with pytest.raises(ContractRevertError) as caught:
        ledger.commit_batch(signed, signatures, sender=relayer)
    assert caught.value.error_name == "SettlementEpochExpired"
    # ... but that was the minority's last move: no member is ineligible, so no further selection
    # until the epoch is old, and the batch signed again under it commits
    assert selector.first_ineligible_member() is None
    for v in [*MINORITY, fresh]:
        with pytest.raises(ContractRevertError) as caught:
            selector.select_committee(sender=v.account())
        assert caught.value.error_name == "SelectorEpochTooYoung"
    again = Batch(3, 1, 10, ROOT)
    ledger.commit_batch(
        again, [s.sign(ledger.domain_separator, again) for s in honest], sender=relayer
    )
    assert ledger.last_committed() == (10, ROOT, 1)
    # the rebuilt eligible set (events alone) agrees with the selector's
    report = score_verifier.compare(registry, selector, 0, w3.eth.block_number)
    assert report.ok, [c for c in report.comparisons if not c.ok]

    # once bonded for a minimum epoch they are candidates again, and the next selection takes them
    advance_time(w3, MIN_EPOCH)
    world.refresh(owner)
    candidates = {m.address for m in selector.eligible_candidates()}
    assert candidates == {v.account().address for v in VALIDATORS} | {fresh.account().address}
    selector.select_committee(sender=owner)
    members = set(selector.current_committee().members)
    assert len(members) == 5 and members > {v.account().address for v in HONEST}
    report = score_verifier.compare(registry, selector, 0, w3.eth.block_number)
    assert report.ok, [c for c in report.comparisons if not c.ok]


def _short_hardware_proof(world: World, v: ValidatorSpec, lifetime: int) -> SignedProof:
    """A hardware proof of the validator's node by its own facility's attestor that lapses after
    ``lifetime`` seconds."""
    spec = world.facilities[v.facility]
    now = world.now()
    vendor, model, firmware = v.hardware
    body = {"vendor": vendor, "model": model, "firmware": firmware}
    return make_proof(
        spec.signer(),
        world.registry.domain_separator(),
        facility_id=spec.facility_id,
        kind=Kind.HARDWARE,
        evidence=world.evidence(spec, Kind.HARDWARE, now, body),
        issued_at=now,
        expires_at=now + lifetime,
        sequence=world._next(spec.name),
        subject=subject_for_node(v.node().address),
        domain_id=hardware_domain(vendor, model, firmware),
    )


def test_a_member_that_lapses_to_force_a_selection_is_benched_for_a_minimum_epoch(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, relayer: LocalAccount
) -> None:
    """Found by review of the bonding rule: a member need not re-bond to be ineligible. Its own
    facility's attestor re-attests its node for 3 s, the proof lapses, an emergency selection
    follows, the node is attested again, and the member (bonded before the first committee)
    was a candidate again at once: two members alternating voided every batch. Now the member
    whose ineligibility allowed the selection is benched for a minimum epoch."""
    world, selector = _world(w3, registry, owner)
    selector.select_committee(sender=owner)
    for v in MINORITY:
        address = v.account().address
        world.submit([_short_hardware_proof(world, v, 3)], relayer)
        advance_time(w3, 4)  # the node proof has lapsed
        assert selector.first_ineligible_member() == address
        receipt = selector.select_committee(sender=v.account())
        selected = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        world.submit([world.hardware_proof(v)], relayer)  # attested again, bond untouched
        assert selector.benched_until([address]) == [selected + MIN_EPOCH]
        assert address not in {m.address for m in selector.eligible_candidates()}
    assert selector.current_committee().epoch == 3
    assert not {v.account().address for v in MINORITY} & set(selector.current_committee().members)
    assert selector.first_ineligible_member() is None  # nothing left to force a selection with
    report = score_verifier.compare(registry, selector, 0, w3.eth.block_number)
    assert report.ok, [c for c in report.comparisons if not c.ok]
    advance_time(w3, MIN_EPOCH)
    world.refresh(relayer, [Kind.HEALTH])
    world.submit([world.hardware_proof(v) for v in VALIDATORS], relayer)
    assert {m.address for m in selector.eligible_candidates()} == {
        v.account().address for v in VALIDATORS
    }
    report = score_verifier.compare(registry, selector, 0, w3.eth.block_number)
    assert report.ok, [c for c in report.comparisons if not c.ok]


def test_bonds_are_ordered_within_one_second(
    w3: Web3, registry: RegistryClient, owner: LocalAccount
) -> None:
    """Found by review: with times alone, a validator bonded in the first selection's second
    counted as founding, and a member re-bonding in its epoch's first second neither left nor
    lost its weight (chains with several blocks a second). The registry numbers bonds, and
    selection and the ledger compare those numbers."""
    world, selector = _world(w3, registry, owner)
    at = int(w3.eth.get_block("latest")["timestamp"]) + 10
    w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
    try:
        selector.select_committee(sender=owner)
        assert selector.genesis_bonds() == registry.bond_count() == len(VALIDATORS)
        member = MINORITY[0]
        address = member.account().address
        registry.deregister_validator(sender=member.account())
        registry.register_validator(
            world.facilities[member.facility].facility_id,
            member.node(),
            member.stake,
            sender=member.account(),
        )
        info = registry.validator_info(address)
        assert info.bonded_at == at == selector.current_committee().started_at
        assert info.bond_seq == len(VALIDATORS) + 1
        assert selector.first_ineligible_member() == address  # it left and came back
        selector.select_committee(sender=member.account())
        assert address not in {m.address for m in selector.eligible_candidates()}
        assert address not in selector.current_committee().members
        assert w3.eth.get_block("latest")["timestamp"] == at
    finally:
        w3.provider.make_request("anvil_removeBlockTimestampInterval", [])  # type: ignore[arg-type]


def test_the_bench_gives_way_when_the_policy_needs_a_benched_site(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, outsider: LocalAccount
) -> None:
    """Found by review of the bench: a site whose heartbeat lapsed briefly was benched by the
    emergency selection that followed, and when a second site died within the minimum epoch the
    policy (three countries) could not be met without it: the dead member stayed in and its
    stake held back the quorum. Selection now falls back to the benched candidates when the
    policy cannot be met without them."""
    world = build(w3, registry, owner, COMMITTEE_SITES, COMMITTEE_VALIDATORS)
    three_countries = DiversityPolicy(
        3,
        rules=tuple(
            DimensionRule(min_distinct=3) if d == Dimension.COUNTRY else DimensionRule()
            for d in Dimension
        ),
    )
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, three_countries, GeographyPolicy(min_epoch_seconds=MIN_EPOCH)
    )
    selector.select_committee(sender=owner)
    par, lon, nyc, sgp = (v.account().address for v in COMMITTEE_VALIDATORS)
    assert selector.current_committee().members == [par, lon, nyc]

    def beats_but(dead: str) -> None:
        world.submit(
            [
                p
                for s in COMMITTEE_SITES
                if s.name != dead
                for p in world.facility_proofs(s, [Kind.HEALTH])
            ],
            owner,
        )

    advance_time(w3, 121)  # par1 misses its heartbeats: an emergency selection takes sgp1 in
    beats_but("par1")
    selector.select_committee(sender=outsider)
    assert selector.current_committee().members == [lon, nyc, sgp]
    world.submit(world.facility_proofs(COMMITTEE_SITES[0], [Kind.HEALTH]), owner)  # par1 is back
    assert par not in {m.address for m in selector.eligible_candidates()}  # benched
    advance_time(w3, 600)  # lon1 dies within the minimum epoch
    beats_but("lon1")
    assert selector.first_ineligible_member() == lon
    assert [m.address for m in selector.preview_selection().members] == [par, nyc, sgp]
    selector.select_committee(sender=outsider)
    assert selector.current_committee().members == [par, nyc, sgp]
    report = score_verifier.compare(registry, selector, 0, w3.eth.block_number)
    assert report.ok, [c for c in report.comparisons if not c.ok]
