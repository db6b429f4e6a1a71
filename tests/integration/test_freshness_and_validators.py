"""Staleness (why a facility is stale) and validators bound to the facility that attests them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from redundancy.domains import Kind
from redundancy.eip712 import Signer
from redundancy.errors import ContractRevertError
from redundancy.proofs import SignedBinding, ValidatorBinding
from redundancy.registry import RegistryClient
from tests.integration.conftest import ProofFactory, Site, advance_time

STAKE = 10**18


def test_new_facility_is_stale_with_every_required_kind_missing(
    registry: RegistryClient, site: Site
) -> None:
    status = registry.facility_status(site.facility_id)
    assert status.stale and status.registered and status.active
    assert status.missing_kinds == registry.freshness_policy().required_kinds
    assert status.expired_kinds == frozenset()


def test_facility_with_all_required_proofs_is_fresh(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    registry.submit_attestations(proofs.fresh_facility(site), sender=relayer)
    status = registry.facility_status(site.facility_id)
    assert not status.stale and status.reasons() == []


def test_missed_heartbeats_make_facility_stale_with_health_expired(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    batch = [
        proofs.make(site, k, lifetime=600)
        for k in (Kind.POWER, Kind.GEOGRAPHY, Kind.NETWORK, Kind.PROVIDER)
    ]
    batch.append(proofs.make(site, Kind.HEALTH, lifetime=60))
    registry.submit_attestations(batch, sender=relayer)
    assert not registry.facility_status(site.facility_id).stale
    advance_time(w3, 61)
    status = registry.facility_status(site.facility_id)
    assert status.stale
    assert status.expired_kinds == frozenset({Kind.HEALTH}) and status.missing_kinds == frozenset()
    assert status.reasons() == ["health proof expired"]
    registry.submit_attestation(proofs.make(site, Kind.HEALTH, lifetime=60), sender=relayer)
    assert not registry.facility_status(site.facility_id).stale


def _attest_node(
    registry: RegistryClient, proofs: ProofFactory, site: Site, node: str, relayer: LocalAccount
) -> None:
    registry.submit_attestation(proofs.make(site, Kind.HARDWARE, node=node), sender=relayer)


def test_validator_registers_on_attested_node(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    validator: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    _attest_node(registry, proofs, site, node_key.address, relayer)
    receipt = registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    mined_at = registry.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert registry.events_in(receipt, "ValidatorRegistered") == [
        {
            "validator": validator.address,
            "facilityId": site.facility_id,
            "node": node_key.address,
            "stake": STAKE,
            "bondedAt": mined_at,
            "bondSeq": 1,
        }
    ]
    info = registry.validator_info(validator.address)
    assert (info.facility_id, info.node, info.stake, info.bonded_at, info.bond_seq) == (
        site.facility_id,
        node_key.address,
        STAKE,
        mined_at,
        1,
    )
    assert registry.bond_count() == 1
    assert registry.validator_addresses() == [validator.address]


def test_validator_cannot_claim_facility_that_did_not_attest_its_node(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    other_site: Site,
    validator: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    with pytest.raises(ContractRevertError) as unattested:
        registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    assert (unattested.value.error_name, unattested.value.args_by_name) == (
        "RegistryNodeNotAttested",
        {"node": node_key.address.lower(), "facilityId": site.facility_id},
    )
    _attest_node(registry, proofs, other_site, node_key.address, relayer)
    with pytest.raises(ContractRevertError) as elsewhere:
        registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    assert elsewhere.value.error_name == "RegistryNodeNotAttested"
    assert registry.validator_addresses() == []


def test_validator_registration_refuses_bad_input(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    validator: LocalAccount,
    outsider: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    _attest_node(registry, proofs, site, node_key.address, relayer)
    with pytest.raises(ContractRevertError) as zero:
        registry.register_validator(site.facility_id, node_key, 0, sender=validator)
    assert zero.value.error_name == "RegistryZeroStake"
    registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    with pytest.raises(ContractRevertError) as twice:
        registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    assert twice.value.args_by_name == {"validator": validator.address.lower()}
    with pytest.raises(ContractRevertError) as node_taken:
        registry.register_validator(site.facility_id, node_key, STAKE, sender=outsider)
    assert (node_taken.value.error_name, node_taken.value.args_by_name) == (
        "RegistryNodeInUse",
        {"node": node_key.address.lower(), "validator": validator.address.lower()},
    )


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def test_nobody_can_register_on_a_node_without_a_binding_its_key_signed(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    validator: LocalAccount,
    outsider: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    """Finding 5: a freshly attested node cannot be squatted. An outsider who signs its own
    binding, or who takes the binding the node signed for the rightful validator, is refused,
    and the rightful validator then registers."""
    _attest_node(registry, proofs, site, node_key.address, relayer)
    deadline = _now(registry.w3) + 600
    forged = ValidatorBinding(outsider.address, node_key.address, site.facility_id, 0, deadline)
    by_outsider = SignedBinding(
        forged, Signer(bytes(outsider.key)).sign(registry.domain_separator(), forged)
    )
    with pytest.raises(ContractRevertError) as own_key:
        registry.register_validator(site.facility_id, by_outsider, 1, sender=outsider)
    assert (own_key.value.error_name, own_key.value.args_by_name) == (
        "RegistryBindingNotSignedByNode",
        {"node": node_key.address.lower(), "signer": outsider.address.lower()},
    )
    rightful = registry.sign_binding(node_key, validator.address, site.facility_id)
    with pytest.raises(ContractRevertError) as stolen:
        registry.register_validator(site.facility_id, rightful, 1, sender=outsider)
    assert stolen.value.error_name == "RegistryBindingNotSignedByNode"
    assert stolen.value.args_by_name["node"] == node_key.address.lower()
    assert stolen.value.args_by_name["signer"] != node_key.address.lower()
    assert registry.validator_addresses() == []
    registry.register_validator(site.facility_id, rightful, STAKE, sender=validator)
    assert registry.validator_info(validator.address).node == node_key.address


def test_a_binding_is_refused_for_another_facility_after_its_deadline_and_once_used(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    validator: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
    w3: Web3,
) -> None:
    _attest_node(registry, proofs, site, node_key.address, relayer)
    elsewhere = registry.sign_binding(node_key, validator.address, keccak(text="facility:other"))
    with pytest.raises(ContractRevertError) as other_facility:
        registry.register_validator(site.facility_id, elsewhere, STAKE, sender=validator)
    assert other_facility.value.error_name == "RegistryBindingNotSignedByNode"
    now = _now(w3)
    late = registry.sign_binding(node_key, validator.address, site.facility_id, deadline=now)
    with pytest.raises(ContractRevertError) as expired:
        registry.register_validator(site.facility_id, late, STAKE, sender=validator)
    assert expired.value.error_name == "RegistryBindingExpired"
    assert expired.value.args_by_name["deadline"] == now
    assert registry.node_binding_nonce(node_key.address) == 0
    binding = registry.sign_binding(node_key, validator.address, site.facility_id)
    registry.register_validator(site.facility_id, binding, STAKE, sender=validator)
    assert registry.node_binding_nonce(node_key.address) == 1
    registry.deregister_validator(sender=validator)
    with pytest.raises(ContractRevertError) as replayed:
        registry.register_validator(site.facility_id, binding, STAKE, sender=validator)
    assert replayed.value.error_name == "RegistryBindingNotSignedByNode"
    assert registry.validator_addresses() == []
    registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    assert registry.validator_addresses() == [validator.address]


def test_stake_increase_and_deregistration_return_funds(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    validator: LocalAccount,
    node_key: LocalAccount,
    relayer: LocalAccount,
    w3: Web3,
) -> None:
    _attest_node(registry, proofs, site, node_key.address, relayer)
    registry.register_validator(site.facility_id, node_key, STAKE, sender=validator)
    receipt = registry.increase_stake(STAKE, sender=validator)
    assert registry.events_in(receipt, "ValidatorStakeIncreased") == [
        {"validator": validator.address, "added": STAKE, "total": 2 * STAKE}
    ]
    balance = w3.eth.get_balance(validator.address)
    receipt = registry.deregister_validator(sender=validator)
    assert registry.events_in(receipt, "ValidatorDeregistered") == [
        {"validator": validator.address, "stakeReturned": 2 * STAKE}
    ]
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(validator.address) == balance + 2 * STAKE - fee
    assert registry.validator_addresses() == []
    with pytest.raises(ContractRevertError) as gone:
        registry.deregister_validator(sender=validator)
    assert gone.value.error_name == "RegistryUnknownValidator"


def test_a_facility_runs_at_most_max_validators(
    w3: Web3,
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    relayer: LocalAccount,
) -> None:
    """Found by review: selection reads every listed validator and a facility's attestor can
    attest any number of node keys, so one attestor registering throwaway validators at 1 wei
    each put selection past the block gas limit for good (1,300 of them past 30M gas)."""
    most = int(registry.contract.functions.MAX_VALIDATORS_PER_FACILITY().call())
    assert most == 16

    def funded() -> LocalAccount:
        account: LocalAccount = Account.create()
        w3.provider.make_request("anvil_setBalance", [account.address, hex(10**18)])  # type: ignore[arg-type]
        return account

    validators = []
    for _ in range(most):
        node, validator = funded(), funded()
        _attest_node(registry, proofs, site, node.address, relayer)
        registry.register_validator(site.facility_id, node, 1, sender=validator)
        validators.append(validator)
    node, late = funded(), funded()
    _attest_node(registry, proofs, site, node.address, relayer)
    with pytest.raises(ContractRevertError) as full:
        registry.register_validator(site.facility_id, node, 1, sender=late)
    assert (full.value.error_name, full.value.args_by_name) == (
        "RegistryFacilityFull",
        {"facilityId": site.facility_id, "maxValidators": most},
    )
    registry.deregister_validator(sender=validators[0])  # a place comes free
    registry.register_validator(site.facility_id, node, 1, sender=late)
