"""Facilities, attestor keys, ownership and policy: owner-only changes, each with its event."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from redundancy.domains import Kind, facility_id
from redundancy.eip712 import Signer
from redundancy.errors import ContractRevertError
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from tests.integration.conftest import CA_FINGERPRINT, ProofFactory, Site

NEW_SITE = facility_id("par1")


def reverts(fn: object, *args: object, **kwargs: object) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as caught:
        fn(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def test_register_facility_emits_event_and_stores_it(
    registry: RegistryClient, owner: LocalAccount, outsider: LocalAccount
) -> None:
    receipt = registry.register_facility(NEW_SITE, outsider.address, CA_FINGERPRINT, sender=owner)
    assert registry.events_in(receipt, "FacilityRegistered") == [
        {"facilityId": NEW_SITE, "attestor": outsider.address, "caFingerprint": CA_FINGERPRINT}
    ]
    info = registry.facility(NEW_SITE)
    assert (info.attestor, info.active, info.ca_fingerprint) == (
        outsider.address,
        True,
        CA_FINGERPRINT,
    )
    assert NEW_SITE in registry.facility_ids()
    assert registry.attestor_facility(outsider.address) == NEW_SITE


def test_only_owner_registers_facilities(registry: RegistryClient, outsider: LocalAccount) -> None:
    err = reverts(registry.register_facility, NEW_SITE, outsider.address, sender=outsider)
    assert (err.error_name, err.args_by_name) == (
        "OwnableUnauthorizedAccount",
        {"account": outsider.address.lower()},
    )
    assert not registry.facility(NEW_SITE).registered


def test_register_facility_refuses_bad_input(
    registry: RegistryClient, owner: LocalAccount, site: Site, outsider: LocalAccount
) -> None:
    assert reverts(
        registry.register_facility, site.facility_id, outsider.address, sender=owner
    ).args_by_name == {"facilityId": site.facility_id}
    assert (
        reverts(registry.register_facility, bytes(32), outsider.address, sender=owner).error_name
        == "RegistryZeroFacilityId"
    )
    assert (
        reverts(registry.register_facility, NEW_SITE, "0x" + "00" * 20, sender=owner).error_name
        == "RegistryZeroAddress"
    )
    err = reverts(registry.register_facility, NEW_SITE, site.signer.address, sender=owner)
    assert (err.error_name, err.args_by_name) == (
        "RegistryAttestorInUse",
        {"attestor": site.signer.address.lower(), "facilityId": site.facility_id},
    )


def test_owner_rotates_attestor_and_old_key_is_refused(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    owner: LocalAccount,
    outsider: LocalAccount,
    relayer: LocalAccount,
) -> None:
    receipt = registry.rotate_attestor(site.facility_id, outsider.address, sender=owner)
    assert registry.events_in(receipt, "AttestorRotated") == [
        {
            "facilityId": site.facility_id,
            "previousAttestor": site.signer.address,
            "newAttestor": outsider.address,
        }
    ]
    err = reverts(registry.submit_attestation, proofs.make(site), sender=relayer)
    assert err.error_name == "RegistrySignerNotAttestor"
    registry.submit_attestation(
        proofs.make(site, signer=Signer(bytes(outsider.key))), sender=relayer
    )
    assert registry.attestor_facility(site.signer.address) == bytes(32)


def test_attestor_may_rotate_its_own_key(
    registry: RegistryClient, site: Site, outsider: LocalAccount
) -> None:
    registry.rotate_attestor(site.facility_id, outsider.address, sender=site.account)
    assert registry.facility(site.facility_id).attestor == outsider.address


def test_outsider_cannot_rotate_attestor(
    registry: RegistryClient, site: Site, outsider: LocalAccount
) -> None:
    err = reverts(registry.rotate_attestor, site.facility_id, outsider.address, sender=outsider)
    assert (err.error_name, err.args_by_name) == (
        "RegistryNotOwnerOrAttestor",
        {"caller": outsider.address.lower(), "facilityId": site.facility_id},
    )


def test_readmitted_key_cannot_replay_old_proofs(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    owner: LocalAccount,
    outsider: LocalAccount,
    relayer: LocalAccount,
) -> None:
    old = proofs.make(site)
    registry.submit_attestation(old, sender=relayer)
    registry.rotate_attestor(site.facility_id, outsider.address, sender=owner)
    registry.rotate_attestor(site.facility_id, site.signer.address, sender=owner)
    err = reverts(registry.submit_attestation, old, sender=relayer)
    assert err.error_name == "RegistrySequenceNotIncreasing"


def test_deactivate_and_reactivate_emit_events(
    registry: RegistryClient, site: Site, owner: LocalAccount
) -> None:
    r1 = registry.deactivate_facility(site.facility_id, sender=owner)
    assert registry.events_in(r1, "FacilityDeactivated") == [{"facilityId": site.facility_id}]
    assert registry.facility_status(site.facility_id).stale
    assert (
        reverts(registry.deactivate_facility, site.facility_id, sender=owner).error_name
        == "RegistryFacilityInactive"
    )
    r2 = registry.reactivate_facility(site.facility_id, sender=owner)
    assert registry.events_in(r2, "FacilityReactivated") == [{"facilityId": site.facility_id}]
    assert (
        reverts(registry.reactivate_facility, site.facility_id, sender=owner).error_name
        == "RegistryFacilityActive"
    )


def test_ca_fingerprint_update_is_owner_only(
    registry: RegistryClient, site: Site, owner: LocalAccount, outsider: LocalAccount
) -> None:
    new = bytes.fromhex("22" * 32)
    receipt = registry.set_ca_fingerprint(site.facility_id, new, sender=owner)
    assert registry.events_in(receipt, "CaFingerprintUpdated") == [
        {"facilityId": site.facility_id, "caFingerprint": new}
    ]
    assert (
        reverts(registry.set_ca_fingerprint, site.facility_id, new, sender=outsider).error_name
        == "OwnableUnauthorizedAccount"
    )
    assert (
        reverts(registry.set_ca_fingerprint, NEW_SITE, new, sender=owner).error_name
        == "RegistryUnknownFacility"
    )


def test_two_step_ownership_transfer(
    registry: RegistryClient, owner: LocalAccount, outsider: LocalAccount, relayer: LocalAccount
) -> None:
    r1 = registry.transfer_ownership(outsider.address, sender=owner)
    assert registry.events_in(r1, "OwnershipTransferStarted") == [
        {"previousOwner": owner.address, "newOwner": outsider.address}
    ]
    assert registry.owner() == owner.address  # not yet
    err = reverts(registry.accept_ownership, sender=relayer)
    assert (err.error_name, err.args_by_name) == (
        "OwnableUnauthorizedAccount",
        {"account": relayer.address.lower()},
    )
    r2 = registry.accept_ownership(sender=outsider)
    assert registry.events_in(r2, "OwnershipTransferred") == [
        {"previousOwner": owner.address, "newOwner": outsider.address}
    ]
    assert registry.owner() == outsider.address
    assert registry.pending_owner() == "0x" + "0" * 40
    assert (
        reverts(registry.transfer_ownership, owner.address, sender=owner).error_name
        == "OwnableUnauthorizedAccount"
    )


def test_policy_setter_is_owner_only_and_validates(
    registry: RegistryClient, owner: LocalAccount, outsider: LocalAccount
) -> None:
    tighter = dataclasses.replace(
        DEFAULT_POLICY, max_future_skew=5, require_tpm=frozenset({Kind.HARDWARE, Kind.POWER})
    )
    receipt = registry.set_freshness_policy(tighter, sender=owner)
    lifetimes, skew, mask, tpm = tighter.as_abi()
    assert tpm == 0b11
    assert registry.events_in(receipt, "FreshnessPolicyUpdated") == [
        {
            "policy": {
                "maxLifetime": lifetimes,
                "maxFutureSkew": skew,
                "requiredKinds": mask,
                "requireTpm": tpm,
            }
        }
    ]
    assert registry.freshness_policy() == tighter
    assert (
        reverts(registry.set_freshness_policy, DEFAULT_POLICY, sender=outsider).error_name
        == "OwnableUnauthorizedAccount"
    )
    zero_ttl = dataclasses.replace(DEFAULT_POLICY, max_lifetime=(0, 1, 1, 1, 1, 1))
    err = reverts(registry.set_freshness_policy, zero_ttl, sender=owner)
    assert (err.error_name, err.args_by_name) == ("RegistryInvalidPolicy", {"field": "maxLifetime"})
    per_node = dataclasses.replace(DEFAULT_POLICY, required_kinds=frozenset({Kind.HARDWARE}))
    err = reverts(registry.set_freshness_policy, per_node, sender=owner)
    assert err.args_by_name == {"field": "requiredKinds"}
    assert registry.freshness_policy() == tighter


def test_chain_id_and_domain_separator_match_python(registry: RegistryClient, w3: Web3) -> None:
    from redundancy.proofs import registry_domain_separator

    ours = registry_domain_separator(w3.eth.chain_id, registry.address)
    assert registry.domain_separator() == ours


@pytest.mark.parametrize("contract", ["registry", "selector"])
def test_ownership_cannot_be_renounced(
    contract: str,
    registry: RegistryClient,
    owner: LocalAccount,
    outsider: LocalAccount,
    w3: Web3,
) -> None:
    from redundancy.selector import SelectorClient

    client = (
        registry
        if contract == "registry"
        else SelectorClient.deploy(w3, owner, registry.address)[0]
    )
    renounce = client.contract.functions.renounceOwnership()
    err = reverts(client.tx.call, lambda: renounce.call({"from": owner.address}))
    expected = (
        "RegistryRenounceForbidden" if contract == "registry" else "SelectorRenounceForbidden"
    )
    assert (err.error_name, err.args_by_name) == (expected, {})
    err = reverts(client.tx.call, lambda: renounce.call({"from": outsider.address}))
    assert err.error_name == "OwnableUnauthorizedAccount"
    assert client.tx.call(client.contract.functions.owner().call) == owner.address
