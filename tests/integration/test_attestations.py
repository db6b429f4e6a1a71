"""Site proofs on a real anvil: what the registry accepts, and every reason it refuses one."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from redundancy.domains import Dimension, Kind, domain_id
from redundancy.eip712 import Signature, Signer
from redundancy.errors import ContractRevertError
from redundancy.proofs import SignedProof, registry_domain_separator
from redundancy.registry import RegistryClient
from tests.integration.conftest import FRANKFURT, ProofFactory, Site, now

HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def refused(
    registry: RegistryClient,
    proof: SignedProof,
    sender: LocalAccount,
    domain_sep: bytes | None = None,
) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as caught:
        registry.submit_attestation(proof, sender=sender, domain_separator=domain_sep)
    return caught.value


def snapshot_state(registry: RegistryClient, site: Site) -> tuple[object, ...]:
    return (registry.last_sequence(site.signer.address), registry.facility(site.facility_id))


def test_accepts_power_proof_and_emits_exact_events(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    proof = proofs.make(site, Kind.POWER)
    result = registry.submit_attestation(proof, sender=relayer)
    a = proof.attestation
    assert registry.events_in(result.receipt, "AttestationAccepted") == [
        {
            "facilityId": site.facility_id,
            "attestor": site.signer.address,
            "sequence": a.sequence,
            "kind": int(Kind.POWER),
            "subject": site.facility_id,
            "validUntil": a.expires_at,
        }
    ]
    assert registry.events_in(result.receipt, "FacilityDomainUpdated") == [
        {
            "facilityId": site.facility_id,
            "dimension": int(Dimension.POWER),
            "domainId": a.domain_id,
        }
    ]
    info = registry.facility(site.facility_id)
    assert info.domains[Dimension.POWER] == a.domain_id
    assert info.valid_until[Kind.POWER] == a.expires_at
    assert registry.last_sequence(site.signer.address) == a.sequence


def test_geography_proof_sets_metro_country_and_location(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    proof = proofs.make(site, Kind.GEOGRAPHY)
    result = registry.submit_attestation(proof, sender=relayer)
    assert registry.events_in(result.receipt, "FacilityLocationUpdated") == [
        {
            "facilityId": site.facility_id,
            "latitudeE6": FRANKFURT[0],
            "longitudeE6": FRANKFURT[1],
        }
    ]
    dims = {e["dimension"] for e in registry.events_in(result.receipt, "FacilityDomainUpdated")}
    assert dims == {int(Dimension.METRO), int(Dimension.COUNTRY)}
    info = registry.facility(site.facility_id)
    assert (info.latitude_e6, info.longitude_e6) == FRANKFURT
    assert info.domains[Dimension.COUNTRY] == domain_id(Dimension.COUNTRY, "de")


def test_unchanged_domain_emits_no_domain_event(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    registry.submit_attestation(proofs.make(site, Kind.NETWORK), sender=relayer)
    again = registry.submit_attestation(proofs.make(site, Kind.NETWORK), sender=relayer)
    assert registry.events_in(again.receipt, "FacilityDomainUpdated") == []
    assert len(registry.events_in(again.receipt, "AttestationAccepted")) == 1


def test_hardware_proof_binds_node_to_facility(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    proof = proofs.make(site, Kind.HARDWARE, node=node_key.address)
    result = registry.submit_attestation(proof, sender=relayer)
    assert registry.events_in(result.receipt, "NodeHardwareUpdated") == [
        {
            "node": node_key.address,
            "facilityId": site.facility_id,
            "hardwareDomainId": proof.attestation.domain_id,
        }
    ]
    node = registry.node_info(node_key.address)
    assert (node.facility_id, node.valid_until) == (site.facility_id, proof.attestation.expires_at)


def test_rejects_replayed_sequence(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    proof = proofs.make(site)
    registry.submit_attestation(proof, sender=relayer)
    before = snapshot_state(registry, site)
    err = refused(registry, proof, relayer)
    assert err.error_name == "RegistrySequenceNotIncreasing"
    seq = proof.attestation.sequence
    assert err.args_by_name == {
        "attestor": site.signer.address.lower(),
        "lastSequence": seq,
        "sequence": seq,
    }
    assert snapshot_state(registry, site) == before


def test_rejects_lower_sequence_than_last(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    registry.submit_attestation(proofs.make(site, sequence=10), sender=relayer)
    err = refused(registry, proofs.make(site, sequence=9), relayer)
    assert err.error_name == "RegistrySequenceNotIncreasing"
    assert (err.args_by_name["lastSequence"], err.args_by_name["sequence"]) == (10, 9)


def test_rejects_signer_who_is_not_the_attestor(
    registry: RegistryClient, proofs: ProofFactory, site: Site, outsider: LocalAccount
) -> None:
    forger = Signer(bytes(outsider.key))
    before = snapshot_state(registry, site)
    err = refused(registry, proofs.make(site, signer=forger), outsider)
    assert err.error_name == "RegistrySignerNotAttestor"
    assert err.args_by_name == {
        "facilityId": site.facility_id,
        "signer": forger.address.lower(),
        "attestor": site.signer.address.lower(),
    }
    assert snapshot_state(registry, site) == before


def test_rejects_other_sites_attestor_for_this_facility(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    other_site: Site,
    relayer: LocalAccount,
) -> None:
    err = refused(registry, proofs.make(site, signer=other_site.signer), relayer)
    assert err.error_name == "RegistrySignerNotAttestor"
    assert err.args_by_name["signer"] == other_site.signer.address.lower()


def test_rejects_tampered_field_after_signing(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    good = proofs.make(site, Kind.POWER)
    other_grid = domain_id(Dimension.POWER, "ercot")
    tampered_att = type(good.attestation)(
        **{
            **{f: getattr(good.attestation, f) for f in good.attestation.__slots__},
            "domain_id": other_grid,
        }
    )
    err = refused(registry, SignedProof(tampered_att, good.evidence, good.signature), relayer)
    assert err.error_name == "RegistrySignerNotAttestor"
    assert err.args_by_name["signer"] != site.signer.address.lower()


def test_rejects_high_s_signature(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    good = proofs.make(site)
    high = Signature(good.signature.v, good.signature.r, (HALF_ORDER + 1).to_bytes(32, "big"))
    err = refused(registry, SignedProof(good.attestation, good.evidence, high), relayer)
    assert (err.error_name, err.args_by_name) == ("RegistryInvalidSignature", {})


def test_malleable_twin_signature_is_refused(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    """(r, n - s, flipped v) is the same signature's twin; the compact form cannot carry it."""
    good = proofs.make(site)
    s = int.from_bytes(good.signature.s, "big")
    twin = Signature(55 - good.signature.v, good.signature.r, (ORDER - s).to_bytes(32, "big"))
    err = refused(registry, SignedProof(good.attestation, good.evidence, twin), relayer)
    assert err.error_name in {"RegistryInvalidSignature", "RegistrySignerNotAttestor"}
    assert registry.last_sequence(site.signer.address) == 0


def test_rejects_unrecoverable_signature(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    good = proofs.make(site)
    garbage = Signature(27, bytes(32), good.signature.s)  # r = 0 recovers no key
    err = refused(registry, SignedProof(good.attestation, good.evidence, garbage), relayer)
    assert err.error_name == "RegistryInvalidSignature"


def test_rejects_expired_proof(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    t = now(w3)
    proof = proofs.make(site, issued_at=t - 100, expires_at=t - 1)
    err = refused(registry, proof, relayer)
    assert err.error_name == "RegistryAttestationExpired"
    assert err.args_by_name["expiresAt"] == t - 1
    assert err.args_by_name["blockTimestamp"] >= t


def test_rejects_proof_from_the_future_beyond_skew(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    skew = registry.freshness_policy().max_future_skew
    t = now(w3)
    proof = proofs.make(site, issued_at=t + skew + 30, expires_at=t + skew + 300)
    err = refused(registry, proof, relayer)
    assert err.error_name == "RegistryAttestationFromFuture"
    assert err.args_by_name["issuedAt"] == t + skew + 30
    assert err.args_by_name["maxFutureSkew"] == skew


def test_accepts_proof_issued_within_skew(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    t = now(w3)
    registry.submit_attestation(
        proofs.make(site, issued_at=t + 10, expires_at=t + 300), sender=relayer
    )
    assert registry.last_sequence(site.signer.address) > 0


def test_rejects_lifetime_longer_than_policy(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    max_health = registry.freshness_policy().max_lifetime[Kind.HEALTH]
    t = now(w3)
    err = refused(
        registry,
        proofs.make(site, Kind.HEALTH, issued_at=t, expires_at=t + max_health + 1),
        relayer,
    )
    assert err.error_name == "RegistryInvalidLifetime"
    assert err.args_by_name == {
        "kind": int(Kind.HEALTH),
        "issuedAt": t,
        "expiresAt": t + max_health + 1,
        "maxLifetime": max_health,
    }


def test_rejects_proof_signed_for_another_chain(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    foreign = registry_domain_separator(1, registry.address)
    before = snapshot_state(registry, site)
    err = refused(registry, proofs.make(site, domain_sep=foreign), relayer, domain_sep=foreign)
    assert err.error_name == "RegistryWrongDomain"
    assert err.args_by_name == {"expected": registry.domain_separator(), "given": foreign}
    assert snapshot_state(registry, site) == before


def test_rejects_proof_signed_for_another_registry(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount, w3: Web3
) -> None:
    foreign = registry_domain_separator(w3.eth.chain_id, "0x" + "ab" * 20)
    err = refused(registry, proofs.make(site, domain_sep=foreign), relayer, domain_sep=foreign)
    assert err.error_name == "RegistryWrongDomain"


def test_foreign_proof_relabelled_as_ours_fails_signature_check(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    foreign = registry_domain_separator(1, registry.address)
    err = refused(registry, proofs.make(site, domain_sep=foreign), relayer)  # declared as ours
    assert err.error_name == "RegistrySignerNotAttestor"


def test_rejects_unknown_facility(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    ghost = Site("ghost", bytes.fromhex("ee" * 32), site.signer, site.account)
    err = refused(registry, proofs.make(ghost), relayer)
    assert (err.error_name, err.args_by_name) == (
        "RegistryUnknownFacility",
        {"facilityId": ghost.facility_id},
    )


def test_rejects_inactive_facility(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    owner: LocalAccount,
    relayer: LocalAccount,
) -> None:
    registry.deactivate_facility(site.facility_id, sender=owner)
    err = refused(registry, proofs.make(site), relayer)
    assert (err.error_name, err.args_by_name) == (
        "RegistryFacilityInactive",
        {"facilityId": site.facility_id},
    )


def test_policy_requires_a_tpm_bound_facility_for_the_kinds_it_names(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    other_site: Site,
    owner: LocalAccount,
    outsider: LocalAccount,
    relayer: LocalAccount,
    node_key: LocalAccount,
) -> None:
    policy = replace(registry.freshness_policy(), require_tpm=frozenset({Kind.HARDWARE}))
    registry.set_freshness_policy(policy, sender=owner)
    assert registry.freshness_policy().require_tpm == {Kind.HARDWARE}
    before = snapshot_state(registry, site)
    err = refused(registry, proofs.make(site, Kind.HARDWARE, node=node_key.address), relayer)
    assert (err.error_name, err.args_by_name) == (
        "RegistryTpmRequired",
        {"facilityId": site.facility_id, "kind": int(Kind.HARDWARE)},
    )
    assert snapshot_state(registry, site) == before
    registry.submit_attestation(proofs.make(site, Kind.POWER), sender=relayer)  # not required

    ak = hashlib.sha256(b"AK certificate DER").digest()
    for sender, facility in ((outsider, site), (site.account, other_site)):  # another's attestor
        with pytest.raises(ContractRevertError) as caught:
            registry.set_tpm_identity(facility.facility_id, ak, sender=sender)
        assert caught.value.error_name == "RegistryNotOwnerOrAttestor"
    receipt = registry.set_tpm_identity(site.facility_id, ak, sender=site.account)
    assert registry.events_in(receipt, "TpmIdentitySet") == [
        {"facilityId": site.facility_id, "akCertificate": ak}
    ]
    assert registry.facility(site.facility_id).tpm_ak_certificate == ak
    registry.submit_attestation(
        proofs.make(site, Kind.HARDWARE, node=node_key.address), sender=relayer
    )

    registry.set_tpm_identity(site.facility_id, bytes(32), sender=owner)  # the owner unbinds
    err = refused(registry, proofs.make(site, Kind.HARDWARE, node=node_key.address), relayer)
    assert err.error_name == "RegistryTpmRequired"
    bad = replace(policy, require_tpm=frozenset(Kind)).as_abi()
    fn = registry.contract.functions.setFreshnessPolicy((*bad[:3], bad[3] | 1 << 6))
    with pytest.raises(ContractRevertError) as caught:
        registry.tx.send(fn, owner)
    assert (caught.value.error_name, caught.value.args_by_name) == (
        "RegistryInvalidPolicy",
        {"field": "requireTpm"},
    )


def test_rejects_evidence_hash_mismatch(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    good = proofs.make(site)
    swapped = SignedProof(good.attestation, good.evidence + b" ", good.signature)
    err = refused(registry, swapped, relayer)
    assert err.error_name == "RegistryEvidenceHashMismatch"
    assert err.args_by_name["declared"] == good.attestation.evidence_hash
    assert err.args_by_name["computed"] != good.attestation.evidence_hash


@pytest.mark.parametrize(
    ("kind", "field", "value", "error"),
    [
        (Kind.POWER, "subject", bytes(31) + b"\x01", "RegistryInvalidSubject"),
        (Kind.HARDWARE, "subject", bytes(32), "RegistryInvalidSubject"),
        (Kind.HARDWARE, "subject", b"\x01" + bytes(31), "RegistryInvalidSubject"),
        (Kind.POWER, "domain_id", bytes(32), "RegistryInvalidDomain"),
        (Kind.HEALTH, "domain_id", b"\x01" * 32, "RegistryInvalidDomain"),
        (Kind.GEOGRAPHY, "secondary_domain_id", bytes(32), "RegistryInvalidDomain"),
        (Kind.NETWORK, "secondary_domain_id", b"\x02" * 32, "RegistryInvalidDomain"),
        (Kind.GEOGRAPHY, "latitude_e6", 90_000_001, "RegistryInvalidCoordinates"),
        (Kind.GEOGRAPHY, "longitude_e6", -180_000_001, "RegistryInvalidCoordinates"),
        (Kind.POWER, "latitude_e6", 1, "RegistryInvalidCoordinates"),
    ],
)
def test_rejects_malformed_fields_for_kind(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    relayer: LocalAccount,
    node_key: LocalAccount,
    kind: Kind,
    field: str,
    value: object,
    error: str,
) -> None:
    node = node_key.address if kind == Kind.HARDWARE else None
    err = refused(registry, proofs.make(site, kind, node=node, **{field: value}), relayer)
    assert err.error_name == error
    assert err.args_by_name["kind"] == int(kind)


def test_rejects_unknown_kind_and_malformed_packing(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    good = proofs.make(site)
    fn = registry.contract.functions.submitAttestation
    ds = registry.domain_separator()
    for packed, name, args in [
        (
            (good.attestation.packed() & ~(0xFF << 208)) | (7 << 208),
            "RegistryUnknownKind",
            {"kind": 7},
        ),
        (
            good.attestation.packed() | (1 << 230),
            "RegistryMalformedPacking",
            {"packed": good.attestation.packed() | (1 << 230)},
        ),
    ]:
        raw = list(good.as_abi())
        raw[5] = packed
        with pytest.raises(ContractRevertError) as caught:
            registry.tx.send(fn(ds, tuple(raw)), relayer)
        assert (caught.value.error_name, caught.value.args_by_name) == (name, args)


def test_rejects_node_freshly_attested_by_another_facility(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    other_site: Site,
    node_key: LocalAccount,
    relayer: LocalAccount,
) -> None:
    registry.submit_attestation(
        proofs.make(site, Kind.HARDWARE, node=node_key.address), sender=relayer
    )
    err = refused(registry, proofs.make(other_site, Kind.HARDWARE, node=node_key.address), relayer)
    assert err.error_name == "RegistryNodeAtOtherFacility"
    assert err.args_by_name == {"node": node_key.address.lower(), "facilityId": site.facility_id}


def test_batch_skips_bad_proofs_with_reasons_and_accepts_the_rest(
    registry: RegistryClient,
    proofs: ProofFactory,
    site: Site,
    other_site: Site,
    relayer: LocalAccount,
) -> None:
    good1 = proofs.make(site, Kind.POWER)
    forged = proofs.make(site, Kind.NETWORK, signer=other_site.signer)
    good2 = proofs.make(other_site, Kind.PROVIDER)
    replay = good1
    result = registry.submit_attestations([good1, forged, good2, replay], sender=relayer)
    assert result.accepted == [
        (site.facility_id, good1.attestation.sequence),
        (other_site.facility_id, good2.attestation.sequence),
    ]
    assert result.rejected == [
        (1, "RegistrySignerNotAttestor"),
        (3, "RegistrySequenceNotIncreasing"),
    ]
    rejected = registry.events_in(result.receipt, "AttestationRejected")
    assert rejected[0] == {
        "index": 1,
        "facilityId": site.facility_id,
        "sequence": forged.attestation.sequence,
        "reason": registry.errors.selector_of("RegistrySignerNotAttestor"),
    }
    # the forged network proof changed nothing
    assert registry.facility(site.facility_id).domains[Dimension.NETWORK] == bytes(32)


def test_batch_skips_malformed_signatures_without_reverting(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    """High s and an unrecoverable r are skipped with RegistryInvalidSignature's selector."""
    high_s = proofs.make(site, Kind.POWER)
    high_s = SignedProof(
        high_s.attestation,
        high_s.evidence,
        Signature(high_s.signature.v, high_s.signature.r, (HALF_ORDER + 1).to_bytes(32, "big")),
    )
    zero_r = proofs.make(site, Kind.NETWORK)
    zero_r = SignedProof(
        zero_r.attestation, zero_r.evidence, Signature(27, bytes(32), zero_r.signature.s)
    )
    good = proofs.make(site, Kind.PROVIDER)
    result = registry.submit_attestations([high_s, zero_r, good], sender=relayer)
    assert result.rejected == [(0, "RegistryInvalidSignature"), (1, "RegistryInvalidSignature")]
    assert result.accepted == [(site.facility_id, good.attestation.sequence)]
    reasons = [e["reason"] for e in registry.events_in(result.receipt, "AttestationRejected")]
    assert reasons == [registry.errors.selector_of("RegistryInvalidSignature")] * 2
    domains = registry.facility(site.facility_id).domains
    assert (domains[Dimension.POWER], domains[Dimension.NETWORK]) == (bytes(32), bytes(32))


def test_batch_from_another_domain_reverts_whole(
    registry: RegistryClient, proofs: ProofFactory, site: Site, relayer: LocalAccount
) -> None:
    foreign = registry_domain_separator(1, registry.address)
    batch = [proofs.make(site, domain_sep=foreign) for _ in range(3)]
    with pytest.raises(ContractRevertError) as caught:
        registry.submit_attestations(batch, sender=relayer, domain_separator=foreign)
    assert caught.value.error_name == "RegistryWrongDomain"
    assert registry.last_sequence(site.signer.address) == 0
