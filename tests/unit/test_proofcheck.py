"""redundancy.proofcheck.verify_proof, without a chain: every check of one proof at its
boundaries, with the exact detail a failed check gives (the mutation run found these covered
only by the anvil-backed verifier tests)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_utils import to_checksum_address

from redundancy.checks import CheckResult
from redundancy.devicecert import (
    fingerprint,
    issue_device_cert,
    make_ca,
    sha256_hex,
    sign_envelope,
    to_der,
)
from redundancy.domains import Kind
from redundancy.eip712 import Signer
from redundancy.evidence import canonical_json, evidence_hash
from redundancy.proofcheck import CertificateStore, ProofContext, passed, verify_proof
from redundancy.proofs import SignedProof, make_proof
from redundancy.registry import DEFAULT_POLICY
from redundancy.tpmquote import TpmStructureError, parse_attest, tpm_hardware_domain

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
T = int(NOW.timestamp())
DOMAIN = b"\x11" * 32
FACILITY = b"\x22" * 32
SIGNER = Signer(b"\x01" * 32)
OTHER = Signer(b"\x02" * 32)
CA_KEY = Ed25519PrivateKey.from_private_bytes(b"\x03" * 32)
DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(b"\x04" * 32)
CA = make_ca("fra1", CA_KEY, now=NOW)
DEVICE = issue_device_cert(CA, CA_KEY, DEVICE_KEY.public_key(), "fra1 attestor", now=NOW)
CERTS = {bytes.fromhex(sha256_hex(to_der(c))): to_der(c) for c in (CA, DEVICE)}
POWER_LIFETIME = DEFAULT_POLICY.max_lifetime[Kind.POWER]
SKEW = DEFAULT_POLICY.max_future_skew


def evidence() -> bytes:
    doc = {"v": 1, "kind": "power", "facility": "fra1", "observedAt": T, "body": {"feeds": 2}}
    return sign_envelope(doc, DEVICE_KEY, sha256_hex(to_der(DEVICE)))


def proof(signer: Signer = SIGNER, **fields: int) -> SignedProof:
    args = {"issued_at": T, "expires_at": T + 600, "sequence": 5, **fields}
    return make_proof(
        signer, DOMAIN, facility_id=FACILITY, kind=Kind.POWER, evidence=evidence(), **args
    )


def context(**fields: object) -> ProofContext:
    base = ProofContext(
        domain_separator=DOMAIN,
        declared_domain=DOMAIN,
        attestor=SIGNER.address,
        facility_active=True,
        block_timestamp=T + 10,
        policy=DEFAULT_POLICY,
        previous_sequence=4,
        accepted=True,
        ca_fingerprint=fingerprint(CA),
        certificates=CertificateStore(CERTS.get),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def failures(results: list[CheckResult]) -> dict[str, str]:
    return {r.id: r.detail for r in results if not r.ok}


def test_a_valid_proof_passes_every_check_in_order() -> None:
    results = verify_proof(proof(), context())
    assert passed(results)
    assert [r.id for r in results] == [
        "attestation.domain",
        "attestation.facility",
        "attestation.evidence_hash",
        "attestation.signature",
        "attestation.attestor",
        "attestation.sequence",
        "attestation.not_expired",
        "attestation.not_future",
        "attestation.lifetime",
        "attestation.accepted",
        "evidence.canonical",
        "certificate.ca.pinned",
        "certificate.device.matches",
        "certificate.device.issued_by_ca",
        "certificate.device.valid_at_observation",
        "evidence.device_signature",
    ]
    assert all(r.detail == "" for r in results)


def test_device_false_skips_the_envelope_checks() -> None:
    results = verify_proof(proof(), context(), device=False)
    assert [r.id for r in results][-1] == "attestation.accepted" and len(results) == 10


def test_another_domain_names_both() -> None:
    other = b"\x33" * 32
    assert failures(verify_proof(proof(), context(declared_domain=other), device=False)) == {
        "attestation.domain": f"signed under 0x{other.hex()}, expected 0x{DOMAIN.hex()}"
    }


def test_an_unknown_and_a_deactivated_facility_are_told_apart() -> None:
    unknown = failures(verify_proof(proof(), context(attestor=None), device=False))
    assert unknown["attestation.facility"] == "facility not registered"
    assert unknown["attestation.attestor"] == (
        f"signed by {to_checksum_address(SIGNER.address)}, facility attestor was None"
    )
    inactive = failures(verify_proof(proof(), context(facility_active=False), device=False))
    assert inactive == {"attestation.facility": "facility deactivated"}


def test_evidence_that_is_not_what_was_signed() -> None:
    good = proof()
    tampered = SignedProof(good.attestation, good.evidence + b" ", good.signature)
    computed = evidence_hash(tampered.evidence)
    found = failures(verify_proof(tampered, context(), device=False))
    assert found == {
        "attestation.evidence_hash": (
            f"keccak256(evidence) is 0x{computed.hex()}, "
            f"signed 0x{good.attestation.evidence_hash.hex()}"
        )
    }


def test_a_signature_by_another_key_and_an_unrecoverable_one() -> None:
    found = failures(verify_proof(proof(OTHER), context(), device=False))
    assert found == {
        "attestation.attestor": (
            f"signed by {to_checksum_address(OTHER.address)}, "
            f"facility attestor was {SIGNER.address}"
        )
    }
    good = proof()
    broken = SignedProof(good.attestation, good.evidence, replace(good.signature, v=30))
    found = failures(verify_proof(broken, context(), device=False))
    assert found == {
        "attestation.signature": "signature malformed or not recoverable",
        "attestation.attestor": f"signed by nobody, facility attestor was {SIGNER.address}",
    }


@pytest.mark.parametrize(("previous", "ok"), [(4, True), (5, False), (6, False)])
def test_the_sequence_must_be_above_the_last_accepted(previous: int, ok: bool) -> None:
    found = failures(verify_proof(proof(), context(previous_sequence=previous), device=False))
    assert found == ({} if ok else {"attestation.sequence": f"sequence 5 not above {previous}"})


@pytest.mark.parametrize(("block_time", "ok"), [(T + 599, True), (T + 600, False)])
def test_a_proof_expires_at_its_expiry(block_time: int, ok: bool) -> None:
    found = failures(verify_proof(proof(), context(block_timestamp=block_time), device=False))
    expected = {"attestation.not_expired": f"expired at {T + 600}, block time {block_time}"}
    assert found == ({} if ok else expected)


@pytest.mark.parametrize(("ahead", "ok"), [(SKEW, True), (SKEW + 1, False)])
def test_issued_at_may_lead_the_block_by_the_skew_and_no_more(ahead: int, ok: bool) -> None:
    issued = T + ahead
    p = proof(issued_at=issued, expires_at=issued + 600)
    found = failures(verify_proof(p, context(block_timestamp=T), device=False))
    expected = {"attestation.not_future": f"issued at {issued}, beyond block time {T} + skew"}
    assert found == ({} if ok else expected)


@pytest.mark.parametrize(
    ("lifetime", "ok"), [(1, True), (POWER_LIFETIME, True), (POWER_LIFETIME + 1, False), (0, False)]
)
def test_the_lifetime_is_within_zero_and_the_kind_maximum(lifetime: int, ok: bool) -> None:
    p = proof(issued_at=T, expires_at=T + lifetime)
    found = failures(verify_proof(p, context(block_timestamp=T - 1), device=False))
    detail = f"lifetime {lifetime} s outside (0, {POWER_LIFETIME}]"
    if lifetime == 0:  # expired too: it ends at the block after the one it is checked at
        assert found["attestation.lifetime"] == detail
    else:
        assert found == ({} if ok else {"attestation.lifetime": detail})


def test_a_proof_the_registry_did_not_accept() -> None:
    assert failures(verify_proof(proof(), context(accepted=False), device=False)) == {
        "attestation.accepted": "the registry did not accept this proof"
    }


def test_without_a_certificate_source_the_device_checks_say_so() -> None:
    results = verify_proof(proof(), context(certificates=None))
    assert results[-1] == CheckResult("certificate.lookup", False, "no certificate source")


def test_evidence_that_is_not_an_envelope_fails_as_one_check() -> None:
    p = make_proof(
        SIGNER,
        DOMAIN,
        facility_id=FACILITY,
        kind=Kind.POWER,
        evidence=b"[1, 2]",
        issued_at=T,
        expires_at=T + 600,
        sequence=5,
    )
    results = verify_proof(p, context())
    assert results[-1] == CheckResult(
        "evidence.json",
        False,
        "evidence is not a device-signed envelope: evidence is not a JSON object",
    )
    assert len(results) == 11


def test_a_device_certificate_not_on_chain_is_reported() -> None:
    results = verify_proof(proof(), context(certificates=CertificateStore({}.get)))
    found = failures(results)
    assert found["certificate.ca.published"] == "CA certificate not found on-chain"
    assert found["certificate.device.published"].startswith("device certificate ")


def test_the_certificate_store_fetches_and_parses_each_certificate_once() -> None:
    fetched: list[bytes] = []

    def fetch(h: bytes) -> bytes | None:
        fetched.append(h)
        return CERTS.get(h) if h != b"\x00" * 32 else b"not DER"

    store = CertificateStore(fetch)
    device_hash = bytes.fromhex(sha256_hex(to_der(DEVICE)))
    assert store.get(device_hash) == DEVICE and store.get(device_hash) == DEVICE
    assert store.get(b"\x00" * 32) is None and store.get(b"\x00" * 32) is None
    assert store.get(b"\x09" * 32) is None
    assert fetched == [device_hash, b"\x00" * 32, b"\x09" * 32]
    first = store.issued_by(DEVICE, CA)
    assert first.ok and store.issued_by(DEVICE, CA) is first


# A TPM-quoted envelope (identity "tpm"), well formed but with no published certificates and a
# quote that is not a TPM structure: the fast suite cannot make a real quote (swtpm does, in
# tests/integration/test_tpm_quotes.py), but every check the proof's own fields feed (the pinned
# root, the nonce's block and its window around issuedAt, the hardware domain named by PCR 0,
# the AK the facility bound) gives its verdict all the same.
PCR0 = b"\x05" * 32
ROOT = b"\x06" * 32
EK = b"\x07" * 32
AK = b"\xab" * 32
NONCE_BLOCK = 7
NONCE_HASH = b"\x08" * 32


def tpm_evidence() -> bytes:
    doc = {
        "v": 1,
        "identity": "tpm",
        "kind": "hardware",
        "facility": "fra1",
        "observedAt": T,
        "body": {},
        "nonce": {"block": NONCE_BLOCK, "hash": NONCE_HASH.hex()},
        "tpm": {
            "akCert": AK.hex().upper(),  # any letter case names the same AK
            "ekCert": EK.hex(),
            "caChain": [ROOT.hex()],
            "pcrs": {"0": PCR0.hex()},
        },
        "quote": {"attest": "00", "signature": "00"},
    }
    return canonical_json(doc)


def tpm_proof(kind: Kind = Kind.HARDWARE, domain: bytes | None = None) -> SignedProof:
    return make_proof(
        SIGNER,
        DOMAIN,
        facility_id=FACILITY,
        kind=kind,
        evidence=tpm_evidence(),
        issued_at=T,
        expires_at=T + 600,
        sequence=5,
        domain_id=tpm_hardware_domain(PCR0) if domain is None else domain,
    )


def nonce_block_at(timestamp: int) -> Callable[[int], tuple[bytes, int] | None]:
    return lambda number: (NONCE_HASH, timestamp) if number == NONCE_BLOCK else None


def tpm_context(**fields: object) -> ProofContext:
    base = {"manufacturer_cas": {ROOT}, "block": nonce_block_at(T - 5), **fields}
    return context(**base)


def device_part(results: list[CheckResult]) -> list[tuple[str, bool, str]]:
    return [(r.id, r.ok, r.detail) for r in results[10:]]


def quote_unreadable() -> list[tuple[str, bool, str]]:
    with pytest.raises(TpmStructureError) as caught:
        parse_attest(b"\x00")
    why = str(caught.value)
    return [
        ("tpm.quote.form", False, why),
        ("tpm.quote.signature", False, "no certified AK to check the signature with"),
        ("tpm.quote.evidence", False, f"quote unreadable: {why}"),
        ("tpm.quote.pcrs", False, f"quote unreadable: {why}"),
    ]


def test_a_tpm_envelope_gets_the_tpm_checks_fed_by_the_proof_and_the_context() -> None:
    assert device_part(verify_proof(tpm_proof(), tpm_context())) == [
        ("evidence.canonical", True, ""),
        ("tpm.envelope", True, ""),
        ("tpm.ca.pinned", True, ""),
        ("tpm.ek.chain", False, f"EK certificate {EK.hex()} not published"),
        ("tpm.ak.certified", False, "AK certificate not published"),
        *quote_unreadable(),
        ("tpm.nonce.fresh", True, ""),
        ("tpm.hardware_domain", True, ""),
        ("tpm.identity", True, ""),
    ]


def test_a_tpm_envelope_from_an_unpinned_manufacturer() -> None:
    found = failures(verify_proof(tpm_proof(), tpm_context(manufacturer_cas=frozenset())))
    assert found["tpm.ca.pinned"] == f"root CA {ROOT.hex()} is not pinned"


def test_a_tpm_nonce_without_a_block_lookup_is_not_on_the_chain() -> None:
    found = failures(verify_proof(tpm_proof(), tpm_context(block=None)))
    assert found["tpm.nonce.fresh"] == f"nonce block {NONCE_BLOCK} not on the chain"


@pytest.mark.parametrize(("ahead", "ok"), [(SKEW, True), (SKEW + 1, False)])
def test_a_tpm_nonce_block_may_lead_issued_at_by_the_policy_skew(ahead: int, ok: bool) -> None:
    results = verify_proof(tpm_proof(), tpm_context(block=nonce_block_at(T + ahead)))
    fresh = next(r for r in results if r.id == "tpm.nonce.fresh")
    assert (fresh.ok, fresh.detail) == (
        (True, "") if ok else (False, f"nonce block time {T + ahead} after issuedAt {T} + {SKEW} s")
    )


def test_only_a_hardware_proof_checks_the_domain_pcr0_names() -> None:
    other = b"\x44" * 32
    found = failures(verify_proof(tpm_proof(domain=other), tpm_context()))
    assert found["tpm.hardware_domain"] == (
        "domain id is not the one PCR 0 (measured firmware) names"
    )
    power = [r.id for r in verify_proof(tpm_proof(Kind.POWER, other), tpm_context())]
    assert "tpm.hardware_domain" not in power and power[-1] == "tpm.identity"


def test_a_tpm_envelope_against_the_ak_its_facility_bound() -> None:
    same = verify_proof(tpm_proof(), tpm_context(tpm_ak_certificate=AK))
    assert same[-1] == CheckResult("tpm.identity", True)
    other = b"\xcd" * 32
    results = verify_proof(tpm_proof(), tpm_context(tpm_ak_certificate=other))
    assert results[-1] == CheckResult(
        "tpm.identity",
        False,
        f"quoted by AK 0x{AK.hex().upper()}, facility bound to AK 0x{other.hex()}",
    )


def test_a_file_key_envelope_for_a_facility_bound_to_a_tpm_ak() -> None:
    results = verify_proof(proof(), context(tpm_ak_certificate=AK))
    assert results[-1] == CheckResult(
        "tpm.identity",
        False,
        f"facility is bound to TPM AK 0x{AK.hex()}; this evidence is signed by a file key",
    )
    assert passed(results[:-1])


def envelope_proof(doc: dict[str, object]) -> SignedProof:
    return make_proof(
        SIGNER,
        DOMAIN,
        facility_id=FACILITY,
        kind=Kind.POWER,
        evidence=canonical_json(doc),
        issued_at=T,
        expires_at=T + 600,
        sequence=5,
    )


def test_an_envelope_naming_no_device_certificate_is_reported_unpublished() -> None:
    doc = {"v": 1, "kind": "power", "facility": "fra1", "observedAt": T, "body": {}}
    results = verify_proof(envelope_proof(doc), context())
    assert results[-1] == CheckResult(
        "certificate.device.published", False, "device certificate None not found on-chain"
    )


def test_a_device_certificate_hash_that_is_not_32_bytes_is_never_looked_up() -> None:
    fetched: list[bytes] = []

    def fetch(h: bytes) -> bytes | None:
        fetched.append(h)
        return CERTS.get(h)

    doc = {"v": 1, "kind": "power", "observedAt": T, "body": {}, "deviceCert": "ab" * 16}
    results = verify_proof(envelope_proof(doc), context(certificates=CertificateStore(fetch)))
    assert fetched == [fingerprint(CA)]
    assert results[-1].id == "certificate.device.published" and not results[-1].ok


def test_the_chain_check_of_a_proof_goes_through_the_stores_cache() -> None:
    store = CertificateStore(CERTS.get)
    results = verify_proof(proof(), context(certificates=store))
    chain = next(r for r in results if r.id == "certificate.device.issued_by_ca")
    assert chain.ok and store.issued_by(DEVICE, CA) is chain


def test_the_store_caches_the_chain_check_per_certificate_pair() -> None:
    store = CertificateStore(CERTS.get)
    assert store.issued_by(DEVICE, CA).ok
    assert not store.issued_by(DEVICE, DEVICE).ok  # another pair: checked on its own


def test_a_failed_attestation_check_is_false_not_just_falsy() -> None:
    other = b"\x33" * 32
    results = verify_proof(proof(), context(declared_domain=other), device=False)
    assert results[0].ok is False


@pytest.mark.parametrize(
    ("tpm", "shown"),
    [
        (None, ""),  # no tpm object at all
        ({"ekCert": EK.hex()}, ""),  # no akCert in it
        ({"akCert": "ab" * 33}, "ab" * 32),  # shown to 64 hex digits
    ],
)
def test_a_tpm_envelope_without_a_usable_ak_is_not_the_bound_one(
    tpm: dict[str, object] | None, shown: str
) -> None:
    doc = json.loads(tpm_evidence())
    doc["tpm"] = tpm
    p = make_proof(
        SIGNER,
        DOMAIN,
        facility_id=FACILITY,
        kind=Kind.HARDWARE,
        evidence=canonical_json(doc),
        issued_at=T,
        expires_at=T + 600,
        sequence=5,
    )
    results = verify_proof(p, tpm_context(tpm_ak_certificate=AK))
    assert results[-1] == CheckResult(
        "tpm.identity", False, f"quoted by AK 0x{shown}, facility bound to AK 0x{AK.hex()}"
    )
