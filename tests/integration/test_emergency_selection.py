"""The emergency rule: before the minimum epoch age, a selection is allowed only when a member of
the current committee is no longer eligible (heartbeat lapsed, validator deregistered, node proof
expired), and it says so (EmergencySelection); selectNextCommittee lets a keeper that lost the
race revert cheaply (SelectorEpochAdvanced)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import World, build
from redundancy.domains import Dimension, Kind
from redundancy.errors import ContractRevertError
from redundancy.registry import RegistryClient
from redundancy.selection import DimensionRule, DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.integration.conftest import advance_time
from tests.integration.test_committee import SITES, VALIDATORS

MIN_EPOCH = 3_600
PAR, LON, NYC, SGP = (v.account().address for v in VALIDATORS)


@pytest.fixture
def world(w3: Web3, registry: RegistryClient, owner: LocalAccount) -> World:
    return build(w3, registry, owner, SITES, VALIDATORS)


@pytest.fixture
def selector(
    w3: Web3, owner: LocalAccount, registry: RegistryClient, world: World
) -> Iterator[SelectorClient]:
    client, _ = SelectorClient.deploy(
        w3,
        owner,
        registry.address,
        DiversityPolicy(3),
        GeographyPolicy(min_epoch_seconds=MIN_EPOCH),
    )
    client.select_committee(sender=owner)  # epoch 1: par, lon, nyc (the three largest stakes)
    yield client


def _lapse_heartbeat(world: World, w3: Web3, owner: LocalAccount, dead: str) -> None:
    """Every heartbeat expires; every site but ``dead`` beats again."""
    advance_time(w3, 121)
    live = [s for s in SITES if s.name != dead]
    world.submit([p for s in live for p in world.facility_proofs(s, [Kind.HEALTH])], owner)


def test_every_member_eligible_means_no_early_selection(
    selector: SelectorClient, outsider: LocalAccount
) -> None:
    assert selector.current_committee().members == [PAR, LON, NYC]
    assert selector.first_ineligible_member() is None
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=outsider)
    assert caught.value.error_name == "SelectorEpochTooYoung"


def test_lapsed_heartbeat_of_a_member_allows_an_emergency_selection(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount, outsider: LocalAccount
) -> None:
    started = selector.current_committee().started_at
    _lapse_heartbeat(world, w3, owner, "par1")
    assert selector.first_ineligible_member() == PAR
    receipt = selector.select_committee(sender=outsider)  # well before MIN_EPOCH has passed
    (selected,) = selector.events_in(receipt, "CommitteeSelected")
    assert (selected["epoch"], selected["members"]) == (2, [LON, NYC, SGP])
    assert selector.events_in(receipt, "EmergencySelection") == [
        {"epoch": 2, "ineligibleMember": PAR, "previousStartedAt": started}
    ]
    assert selector.first_ineligible_member() is None
    # the new epoch is young and whole again: no second emergency
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=outsider)
    assert (caught.value.error_name, caught.value.args_by_name["epoch"]) == (
        "SelectorEpochTooYoung",
        2,
    )


def test_deregistered_member_allows_an_emergency_selection(
    world: World, selector: SelectorClient, outsider: LocalAccount
) -> None:
    world.registry.deregister_validator(sender=VALIDATORS[1].account())
    assert selector.first_ineligible_member() == LON
    receipt = selector.select_committee(sender=outsider)
    assert selector.events_in(receipt, "CommitteeSelected")[0]["members"] == [PAR, NYC, SGP]
    assert selector.events_in(receipt, "EmergencySelection")[0]["ineligibleMember"] == LON


def test_expired_node_proof_allows_an_emergency_selection(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    advance_time(w3, 86_400)  # hardware proofs (a day) and heartbeats expire; MIN_EPOCH passed
    world.refresh(owner, list(Kind)[1:6])  # facility-level kinds, not HARDWARE
    world.submit([world.hardware_proof(v) for v in VALIDATORS if v.name != "v-nyc"], owner)
    assert selector.first_ineligible_member() == NYC
    receipt = selector.select_committee(sender=owner)
    # the epoch was old enough anyway: an ordinary selection, not an emergency
    assert selector.events_in(receipt, "EmergencySelection") == []
    assert selector.current_committee().members == [PAR, LON, SGP]


def test_emergency_that_cannot_meet_the_policy_changes_nothing(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount
) -> None:
    three_countries = DiversityPolicy(
        3,
        rules=tuple(
            DimensionRule(min_distinct=3) if d == Dimension.COUNTRY else DimensionRule()
            for d in Dimension
        ),
    )
    selector.set_diversity_policy(three_countries, sender=owner)
    advance_time(w3, 121)
    live = SITES[:2]  # par1 and lon1 beat; nyc1 and sgp1 do not: two countries left, three needed
    world.submit([p for s in live for p in world.facility_proofs(s, [Kind.HEALTH])], owner)
    assert selector.first_ineligible_member() == NYC
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=owner)
    assert caught.value.error_name == "SelectorPolicyUnmet"
    assert selector.current_committee().epoch == 1


def test_select_next_committee_refuses_a_stale_epoch_cheaply(
    world: World, selector: SelectorClient, w3: Web3, owner: LocalAccount, outsider: LocalAccount
) -> None:
    _lapse_heartbeat(world, w3, owner, "par1")
    selector.select_next_committee(1, sender=outsider)
    assert selector.current_committee().epoch == 2
    with pytest.raises(ContractRevertError) as caught:  # refused at estimation: nothing sent
        selector.select_next_committee(1, sender=owner)
    assert (caught.value.error_name, caught.value.args_by_name) == (
        "SelectorEpochAdvanced",
        {"expected": 1, "current": 2},
    )
    # a loser whose transaction was already on its way (a race in one block) is mined, reverts,
    # and pays little: the epoch check is the first thing the function does
    fn = selector.select_next_committee_call(1)
    tx = fn.build_transaction(
        {
            "from": owner.address,
            "gas": 100_000,
            "nonce": w3.eth.get_transaction_count(owner.address),
            "chainId": w3.eth.chain_id,
        }
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(owner.sign_transaction(tx).raw_transaction)  # type: ignore[arg-type]
    )
    assert receipt["status"] == 0 and receipt["gasUsed"] < 30_000
    assert selector.current_committee().epoch == 2
