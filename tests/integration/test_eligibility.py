"""Eligibility follows the node: a validator whose node is now attested by another facility
is not eligible at the facility it registered with, on-chain and in the Python rebuild."""

from __future__ import annotations

from dataclasses import replace

from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.examples import example_facilities
from devnet.world import ValidatorSpec, build
from redundancy.deployment import deploy
from redundancy.domains import Kind
from redundancy.events import contract_events
from redundancy.rebuild import rebuild
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from redundancy.selector import SelectorClient
from tests.integration.conftest import advance_time, now

HARDWARE_LIFETIME = 100
POLICY = replace(
    DEFAULT_POLICY,
    max_lifetime=(HARDWARE_LIFETIME, 86_400, 7 * 86_400, 86_400, 86_400, 86_400),
)


def eligible(
    selector: SelectorClient, registry: RegistryClient, start: int
) -> tuple[set[str], set[str]]:
    """Eligible validator addresses per the contract and per the Python rebuild."""
    onchain = {m.address for m in selector.eligible_candidates()}
    state = rebuild(contract_events([registry, selector], start))
    python = {m.address for m in state.candidates(now(registry.w3))}
    return onchain, python


def test_a_validator_whose_node_moved_to_another_facility_is_not_eligible(
    w3: Web3, owner: LocalAccount
) -> None:
    dep = deploy(w3, owner)
    registry = RegistryClient(w3, dep.registry, owner)
    registry.set_freshness_policy(POLICY)
    selector = SelectorClient(w3, dep.selector, owner)
    fra1, ams1 = example_facilities()[:2]
    validator = ValidatorSpec("v1", fra1.name, 32 * 10**18)
    world = build(w3, registry, owner, [fra1, ams1], [validator])
    address = validator.account().address
    assert eligible(selector, registry, dep.deploy_block) == ({address}, {address})

    advance_time(w3, HARDWARE_LIFETIME + 10)  # the node's proof expires; facilities stay fresh
    world.refresh(owner, [Kind.HEALTH])
    assert eligible(selector, registry, dep.deploy_block) == (set(), set())

    # ams1's attestor now attests the same node: the node runs at ams1, not at fra1
    world.submit([world.hardware_proof(replace(validator, facility=ams1.name))], owner)
    assert registry.node_info(validator.node().address).facility_id == ams1.facility_id
    assert not selector.is_geography_flagged(fra1.facility_id)
    assert eligible(selector, registry, dep.deploy_block) == (set(), set())

    # control: once fra1 attests it again (after ams1's proof lapses), it is eligible again
    advance_time(w3, HARDWARE_LIFETIME + 10)
    world.refresh(owner, [Kind.HEALTH])
    world.submit([world.hardware_proof(validator)], owner)
    assert eligible(selector, registry, dep.deploy_block) == ({address}, {address})
