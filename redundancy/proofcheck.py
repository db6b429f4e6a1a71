"""Independent verification of a site proof, from chain data: every check, pass or fail.

``verify_proof`` is pure and fast (native recovery, precomputed type hashes, certificate chains
verified once and cached); ``redundancy.attestation_verifier`` fetches what it needs from an RPC.
Check ids:

- ``attestation.domain``          signed for this chain and registry
- ``attestation.facility``        facility registered and active at the block
- ``attestation.evidence_hash``   keccak256(evidence) equals the signed evidenceHash
- ``attestation.signature``       signature well formed and recoverable (low s)
- ``attestation.attestor``        signer was the facility's attestor at the block
- ``attestation.sequence``        above the attestor's last accepted sequence
- ``attestation.not_expired``     expiresAt after the block's timestamp
- ``attestation.not_future``      issuedAt within the allowed skew of the block's timestamp
- ``attestation.lifetime``        lifetime within the policy's maximum for the kind
- ``attestation.accepted``        the registry emitted AttestationAccepted for it
- ``evidence.*`` / ``certificate.*``  the device-signed envelope and its certificate chain
- ``tpm.*``                       a TPM-quoted envelope (``redundancy.tpmquote``): pinned
  manufacturer CA, EK chain, AK certified for that EK, quote form, signature, evidence binding,
  PCR digest, nonce freshness, and a hardware proof's domain from PCR 0
- ``tpm.identity``                 for a facility bound to a TPM AK (``setTpmIdentity``) or a
  TPM-quoted envelope: the envelope was quoted by the AK the facility bound at the block (a
  bound facility's file-signed evidence, or another AK's quote, fails)
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass

from cryptography import x509
from eth_utils import to_checksum_address

from redundancy.checks import CheckResult
from redundancy.devicecert import (
    canonical_check,
    fingerprint,
    issued_by,
    parse_envelope,
    verify_envelope,
)
from redundancy.eip712 import recover_address
from redundancy.evidence import evidence_hash
from redundancy.proofs import SignedProof
from redundancy.registry import FreshnessPolicy
from redundancy.tpmquote import IDENTITY_TPM, BlockLookup, TpmContext, verify_tpm_envelope

CertificateFetcher = Callable[[bytes], bytes | None]


class CertificateStore:
    """Certificates by sha256, fetched once (from chain events) and parsed once."""

    def __init__(self, fetch: CertificateFetcher) -> None:
        self._fetch = fetch
        self._cache: dict[bytes, x509.Certificate | None] = {}
        self._chains: dict[tuple[bytes, bytes], CheckResult] = {}

    def get(self, sha256_hash: bytes) -> x509.Certificate | None:
        if sha256_hash not in self._cache:
            der = self._fetch(sha256_hash)
            try:
                self._cache[sha256_hash] = x509.load_der_x509_certificate(der) if der else None
            except ValueError:
                self._cache[sha256_hash] = None
        return self._cache[sha256_hash]

    def issued_by(self, device: x509.Certificate, ca: x509.Certificate) -> CheckResult:
        """``devicecert.issued_by``, computed once per certificate pair."""
        key = (fingerprint(device), fingerprint(ca))
        if key not in self._chains:
            self._chains[key] = issued_by(device, ca)
        return self._chains[key]


@dataclass
class ProofContext:
    """What the chain said at the proof's block, as the verifier found it."""

    domain_separator: bytes
    declared_domain: bytes
    attestor: str | None  # the facility's attestor at the block (None: unknown facility)
    facility_active: bool
    block_timestamp: int
    policy: FreshnessPolicy
    previous_sequence: int
    accepted: bool
    ca_fingerprint: bytes = bytes(32)
    certificates: CertificateStore | None = None
    manufacturer_cas: Container[bytes] = frozenset()  # pinned TPM manufacturer root CAs
    block: BlockLookup | None = None  # (hash, timestamp) by number: TPM nonce freshness
    tpm_ak_certificate: bytes = bytes(32)  # the AK the facility bound at the block (zero: none)


def verify_proof(
    proof: SignedProof, ctx: ProofContext, *, device: bool = True
) -> list[CheckResult]:
    """Every check of one proof (``device=False`` skips the envelope and certificate checks).

    Details are only formatted for failed checks: this runs tens of thousands of times a second.
    """
    a = proof.attestation
    signer = recover_address(a.digest(ctx.domain_separator), proof.signature)
    attestor = bytes.fromhex(ctx.attestor[2:]) if ctx.attestor else None
    computed = evidence_hash(proof.evidence)
    lifetime = ctx.policy.max_lifetime[a.kind]
    outcomes = (
        ("attestation.domain", ctx.declared_domain == ctx.domain_separator),
        ("attestation.facility", attestor is not None and ctx.facility_active),
        ("attestation.evidence_hash", computed == a.evidence_hash),
        ("attestation.signature", signer is not None),
        ("attestation.attestor", signer is not None and signer == attestor),
        ("attestation.sequence", a.sequence > ctx.previous_sequence),
        ("attestation.not_expired", a.expires_at > ctx.block_timestamp),
        ("attestation.not_future", a.issued_at <= ctx.block_timestamp + ctx.policy.max_future_skew),
        ("attestation.lifetime", a.issued_at < a.expires_at <= a.issued_at + lifetime),
        ("attestation.accepted", ctx.accepted),
    )
    results = [
        CheckResult(cid, True)
        if ok
        else CheckResult(cid, False, _why(cid, proof, ctx, signer, computed))
        for cid, ok in outcomes
    ]
    if device:
        results += _device_checks(proof, ctx)
    return results


def _why(
    cid: str, proof: SignedProof, ctx: ProofContext, signer: bytes | None, computed: bytes
) -> str:
    a = proof.attestation
    match cid:
        case "attestation.domain":
            given, expected = ctx.declared_domain.hex(), ctx.domain_separator.hex()
            return f"signed under 0x{given}, expected 0x{expected}"
        case "attestation.facility":
            return "facility not registered" if ctx.attestor is None else "facility deactivated"
        case "attestation.evidence_hash":
            return f"keccak256(evidence) is 0x{computed.hex()}, signed 0x{a.evidence_hash.hex()}"
        case "attestation.signature":
            return "signature malformed or not recoverable"
        case "attestation.attestor":
            who = to_checksum_address(signer) if signer else "nobody"
            return f"signed by {who}, facility attestor was {ctx.attestor}"
        case "attestation.sequence":
            return f"sequence {a.sequence} not above {ctx.previous_sequence}"
        case "attestation.not_expired":
            return f"expired at {a.expires_at}, block time {ctx.block_timestamp}"
        case "attestation.not_future":
            return f"issued at {a.issued_at}, beyond block time {ctx.block_timestamp} + skew"
        case "attestation.lifetime":
            limit = ctx.policy.max_lifetime[a.kind]
            return f"lifetime {a.expires_at - a.issued_at} s outside (0, {limit}]"
        case _:
            return "the registry did not accept this proof"


def _no_block(_number: int) -> tuple[bytes, int] | None:
    return None


def _device_checks(proof: SignedProof, ctx: ProofContext) -> list[CheckResult]:
    evidence = proof.evidence
    if ctx.certificates is None:
        return [CheckResult("certificate.lookup", False, "no certificate source")]
    try:
        doc = parse_envelope(evidence)
        if doc.get("identity") == IDENTITY_TPM:
            a = proof.attestation
            tpm_ctx = TpmContext(
                certificates=ctx.certificates.get,
                manufacturer_cas=ctx.manufacturer_cas,
                block=ctx.block or _no_block,
                issued_at=a.issued_at,
                kind=a.kind.name.lower(),
                domain_id=a.domain_id,
                max_skew=ctx.policy.max_future_skew,
            )
            return [
                canonical_check(doc, evidence),
                *verify_tpm_envelope(doc, tpm_ctx),
                _identity_check(doc, ctx.tpm_ak_certificate),
            ]
        device_hash = bytes.fromhex(str(doc.get("deviceCert", "")))
    except (ValueError, UnicodeDecodeError) as exc:
        return [
            CheckResult("evidence.json", False, f"evidence is not a device-signed envelope: {exc}")
        ]
    device_cert = ctx.certificates.get(device_hash) if len(device_hash) == 32 else None
    ca_cert = ctx.certificates.get(ctx.ca_fingerprint)
    results = verify_envelope(
        evidence, device_cert, ca_cert, ctx.ca_fingerprint, ctx.certificates.issued_by
    )
    if ctx.tpm_ak_certificate != bytes(32):
        bound = ctx.tpm_ak_certificate.hex()
        why = f"facility is bound to TPM AK 0x{bound}; this evidence is signed by a file key"
        results.append(CheckResult("tpm.identity", False, why))
    return results


def _identity_check(doc: dict[str, object], bound: bytes) -> CheckResult:
    """A TPM envelope's AK against the one its facility bound (any AK when none is bound)."""
    tpm = doc.get("tpm")
    ak = str(tpm.get("akCert", "")) if isinstance(tpm, dict) else ""
    if bound == bytes(32) or ak.lower() == bound.hex():
        return CheckResult("tpm.identity", True)
    return CheckResult(
        "tpm.identity", False, f"quoted by AK 0x{ak[:64]}, facility bound to AK 0x{bound.hex()}"
    )


def passed(results: list[CheckResult]) -> bool:
    return all(r.ok for r in results)
