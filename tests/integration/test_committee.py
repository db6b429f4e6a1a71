"""Committee selection from real registry state: eligibility, the selection transaction, policy
failures, epochs, owner-only policy, and the scores/class views."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.domains import Dimension, Kind
from redundancy.errors import ContractRevertError
from redundancy.registry import RegistryClient
from redundancy.scores import ConfigurationClass, compute_scores
from redundancy.selection import DimensionRule, DiversityPolicy, Failure, classify, select_committee
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.conftest import advance_time

ETH = 10**18
SITES = [
    FacilitySpec(
        "par1", "entso-e/rte", "paris", "fr", 48_856_613, 2_352_222, "as5511", "interxion"
    ),
    FacilitySpec(
        "lon1", "gb-nationalgrid", "london", "gb", 51_507_351, -127_758, "as5400", "telehouse"
    ),
    FacilitySpec("nyc1", "nyiso", "new york", "us", 40_712_776, -74_005_974, "as174", "equinix"),
    FacilitySpec("sgp1", "sg-grid", "singapore", "sg", 1_352_083, 103_819_836, "as7473", "equinix"),
]
VALIDATORS = [
    ValidatorSpec("v-par", "par1", 40 * ETH),
    ValidatorSpec("v-lon", "lon1", 30 * ETH, ("hpe", "dl380", "u46")),
    ValidatorSpec("v-nyc", "nyc1", 20 * ETH),
    ValidatorSpec("v-sgp", "sgp1", 10 * ETH, ("supermicro", "x13", "1.2")),
]


@pytest.fixture
def world(w3: Web3, registry: RegistryClient, owner: LocalAccount) -> World:
    return build(w3, registry, owner, SITES, VALIDATORS)


@pytest.fixture
def selector(w3: Web3, owner: LocalAccount, registry: RegistryClient) -> Iterator[SelectorClient]:
    client, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(3), GeographyPolicy(min_epoch_seconds=3_600)
    )
    yield client


def test_eligible_candidates_carry_attested_domains(world: World, selector: SelectorClient) -> None:
    candidates = {m.address: m for m in selector.eligible_candidates()}
    assert set(candidates) == {v.account().address for v in VALIDATORS}
    par = candidates[VALIDATORS[0].account().address]
    assert par.stake == 40 * ETH
    info = world.registry.facility(SITES[0].facility_id)
    assert par.domains[Dimension.FACILITY] == SITES[0].facility_id
    assert par.domains[Dimension.POWER] == info.domains[Dimension.POWER]
    assert (
        par.domains[Dimension.HARDWARE]
        == world.registry.node_info(VALIDATORS[0].node().address).hardware_domain_id
    )


def test_stale_facility_and_expired_node_are_not_eligible(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    advance_time(w3, 121)  # every heartbeat (120 s lifetime) has expired
    assert selector.eligible_candidates() == []
    world.submit([p for s in SITES[:2] for p in world.facility_proofs(s, [Kind.HEALTH])], owner)
    assert {m.address for m in selector.eligible_candidates()} == {
        v.account().address for v in VALIDATORS[:2]
    }
    world.registry.deactivate_facility(SITES[0].facility_id, sender=owner)
    assert {m.address for m in selector.eligible_candidates()} == {VALIDATORS[1].account().address}


def test_select_committee_stores_and_emits_it(
    world: World, selector: SelectorClient, outsider: LocalAccount, w3: Web3
) -> None:
    candidates = selector.eligible_candidates()
    expected = select_committee(candidates, DiversityPolicy(3))
    receipt = selector.select_committee(sender=outsider)  # anyone may trigger selection
    scores = compute_scores(expected.members)
    assert selector.events_in(receipt, "CommitteeSelected") == [
        {
            "epoch": 1,
            "members": [m.address for m in expected.members],
            "stakes": [m.stake for m in expected.members],
            "totalStake": 90 * ETH,
            "score": scores.score,
            "weakest": int(scores.weakest),
            "startedAt": w3.eth.get_block(receipt["blockNumber"])["timestamp"],
        }
    ]
    committee = selector.current_committee()
    assert (committee.epoch, committee.members) == (
        1,
        [v.account().address for v in VALIDATORS[:3]],
    )
    assert committee.stakes == [40 * ETH, 30 * ETH, 20 * ETH]
    assert selector.current_scores() == scores
    # 40/30/20: losing par1 (40 of 90) halts it, but lon1, nyc1 and sgp1 could form a committee
    assert selector.current_class() == ConfigurationClass.ACTIVE_PASSIVE
    assert (
        classify(expected.members, candidates, DiversityPolicy(3))
        == ConfigurationClass.ACTIVE_PASSIVE
    )


def test_the_selection_transaction_reads_interned_domains_and_selects_what_the_ids_select(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    """The transaction reads each domain as the registry's interned index (fewer storage words);
    selection compares domains only for equality, so it must select exactly what the ids select:
    the views (ids) and the Python reference agree with it, before and after a facility moves to
    a provider another facility already uses."""
    registry = world.registry
    rules = [DimensionRule() for _ in Dimension]
    rules[Dimension.PROVIDER] = DimensionRule(max_members=1)
    rules[Dimension.HARDWARE] = DimensionRule(max_members=1)
    policy = DiversityPolicy(3, rules=tuple(rules))
    selector.set_diversity_policy(policy, owner)

    def indices_match_ids() -> None:
        ids = [s.facility_id for s in SITES]
        indexed = registry.contract.functions.selectionFacilitiesIndexed(ids).call()
        stored = [registry.facility(i).domains for i in ids]
        index = [[(row[3] >> (32 * d)) & 0xFFFF_FFFF for d in range(6)] for row in indexed]
        for a in range(len(ids)):
            for b in range(len(ids)):
                for d in range(1, 6):
                    same_index = index[a][d] == index[b][d]
                    assert same_index == (stored[a][d] == stored[b][d]), (SITES[a].name, d)
        assert all(index[a][d] != 0 for a in range(len(ids)) for d in range(1, 6))

    def selected() -> list[str]:
        expected = select_committee(selector.eligible_candidates(), policy)
        assert [m.address for m in selector.preview_selection().members] == [
            m.address for m in expected.members
        ]
        receipt = selector.select_committee(sender=owner)
        (event,) = selector.events_in(receipt, "CommitteeSelected")
        assert event["members"] == [m.address for m in expected.members]
        scores = compute_scores(expected.members)
        assert (event["score"], event["weakest"]) == (scores.score, int(scores.weakest))
        return event["members"]

    indices_match_ids()
    by_address = {v.account().address: v.name for v in VALIDATORS}
    # v-nyc shares v-par's hardware model; v-sgp's provider is equinix, v-nyc's too
    assert [by_address[a] for a in selected()] == ["v-par", "v-lon", "v-sgp"]
    moved = dataclasses.replace(SITES[1], provider="equinix")  # lon1 moves to equinix
    world.submit(world.facility_proofs(moved, [Kind.PROVIDER]), owner)
    assert (
        registry.facility(SITES[1].facility_id).domains[Dimension.PROVIDER]
        == registry.facility(SITES[3].facility_id).domains[Dimension.PROVIDER]
    )
    indices_match_ids()
    advance_time(w3, 3_600)
    world.refresh(owner)
    # lon1 now shares equinix with sgp1 (cap 1): v-sgp is left out, v-nyc still by hardware
    assert [by_address[a] for a in selected()] == ["v-par", "v-lon"]


def test_second_selection_waits_for_the_epoch(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    selector.select_committee(sender=owner)
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=owner)
    assert caught.value.error_name == "SelectorEpochTooYoung"
    assert (caught.value.args_by_name["epoch"], caught.value.args_by_name["minEpochSeconds"]) == (
        1,
        3_600,
    )
    advance_time(w3, 3_600)
    world.refresh(owner)
    selector.select_committee(sender=owner)
    assert selector.current_committee().epoch == 2


def test_committees_that_shrink_and_grow_are_read_back_exactly(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    """The two committee buffers keep their slots (reserved when the size is set, never
    cleared): a smaller committee written over a larger one reads back without the old tail, a
    larger one after a smaller one in full, and the previous epoch's stays readable."""
    addresses = [v.account().address for v in VALIDATORS]
    sizes = [3, 2, 2, 4, 1]
    for epoch, size in enumerate(sizes, start=1):
        selector.set_diversity_policy(DiversityPolicy(size), sender=owner)
        if epoch > 1:
            advance_time(w3, 3_600)
            world.refresh(owner)
        selector.select_committee(sender=owner)
        current = selector.current_committee()
        assert (current.epoch, current.members) == (epoch, addresses[:size])
        assert current.stakes == [v.stake for v in VALIDATORS[:size]]
        if epoch > 1:
            previous = selector.committee_at(epoch - 1)
            assert previous.members == addresses[: sizes[epoch - 2]]
        assert selector.committee_at(max(epoch - 2, 0)).members == []  # older, or epoch 0: none


def test_unmet_policy_reverts_naming_the_dimension(
    world: World, selector: SelectorClient, owner: LocalAccount
) -> None:
    five_countries = DiversityPolicy(
        4,
        rules=tuple(
            DimensionRule(min_distinct=5) if d == Dimension.COUNTRY else DimensionRule()
            for d in Dimension
        ),
    )
    selector.set_diversity_policy(five_countries, sender=owner)
    assert selector.preview_selection().failure == Failure.DISTINCT
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=owner)
    assert (caught.value.error_name, caught.value.args_by_name) == (
        "SelectorPolicyUnmet",
        {"failure": int(Failure.DISTINCT), "dimension": int(Dimension.COUNTRY)},
    )
    assert selector.current_committee().epoch == 0


def test_active_active_committee_class(
    world: World, selector: SelectorClient, owner: LocalAccount
) -> None:
    world.registry.increase_stake(10 * ETH, sender=VALIDATORS[2].account())
    world.registry.increase_stake(20 * ETH, sender=VALIDATORS[3].account())
    selector.set_diversity_policy(DiversityPolicy(4), sender=owner)
    selector.select_committee(sender=owner)
    # 40/30/30/30: no facility holds a third of 130, so two must fail to halt consensus
    assert selector.current_scores().of(Dimension.FACILITY).tolerance == 1
    assert selector.current_class() == ConfigurationClass.ACTIVE_ACTIVE


def test_policy_setters_are_owner_only_and_validated(
    selector: SelectorClient, owner: LocalAccount, outsider: LocalAccount
) -> None:
    with pytest.raises(ContractRevertError) as not_owner:
        selector.set_diversity_policy(DiversityPolicy(5), sender=outsider)
    assert (not_owner.value.error_name, not_owner.value.args_by_name) == (
        "OwnableUnauthorizedAccount",
        {"account": outsider.address.lower()},
    )
    with pytest.raises(ContractRevertError) as zero:
        selector.set_diversity_policy(DiversityPolicy(0), sender=owner)
    assert zero.value.args_by_name == {"field": "committeeSize"}
    bad_share = dataclasses.replace(
        DiversityPolicy(5), rules=(DimensionRule(max_share_bps=10_001),) * 7
    )
    with pytest.raises(ContractRevertError) as share:
        selector.set_diversity_policy(bad_share, sender=owner)
    assert share.value.args_by_name == {"field": "maxShareBps"}
    receipt = selector.set_diversity_policy(DiversityPolicy(5, min_tolerance=1), sender=owner)
    assert len(selector.events_in(receipt, "DiversityPolicyUpdated")) == 1
    assert selector.diversity_policy() == DiversityPolicy(5, min_tolerance=1)
