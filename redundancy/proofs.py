"""Signed site proofs: build, sign, and put into the shape the registry takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redundancy.domains import Kind
from redundancy.eip712 import Attestation, Signature, Signer, attestation_digest, recover_signer
from redundancy.evidence import evidence_hash

_ZERO = bytes(32)


@dataclass(frozen=True, slots=True)
class SignedProof:
    """An attestation, its evidence document and the attestor's signature."""

    attestation: Attestation
    evidence: bytes
    signature: Signature

    def as_abi(self) -> tuple[object, ...]:
        """The ``SignedAttestation`` tuple for the contract (packed fields, compact signature)."""
        a = self.attestation
        return (
            a.facility_id,
            a.subject,
            a.domain_id,
            a.secondary_domain_id,
            a.evidence_hash,
            a.packed(),
            self.evidence,
            self.signature.r,
            self.signature.y_parity_and_s(),
        )

    def signer(self, domain_sep: bytes) -> str | None:
        """The address that signed this proof under ``domain_sep`` (None if malformed)."""
        return recover_signer(attestation_digest(domain_sep, self.attestation), self.signature)

    @classmethod
    def from_abi(cls, values: Sequence[Any] | Mapping[str, Any]) -> SignedProof:
        """Parse the ``SignedAttestation`` tuple as decoded from calldata (ValueError if the
        packed word is malformed)."""
        if isinstance(values, Mapping):  # web3 decodes calldata structs by field name
            values = list(values.values())
        facility, subject, d1, d2, ev_hash, packed, evidence, r, vs = values
        att = Attestation.from_packed(
            bytes(facility), bytes(subject), bytes(d1), bytes(d2), bytes(ev_hash), int(packed)
        )
        return cls(att, bytes(evidence), Signature.from_compact(bytes(r), bytes(vs)))


def subject_for_node(node_address: str) -> bytes:
    """The 32-byte subject of a hardware proof: the node's address, left-padded."""
    return bytes(12) + bytes.fromhex(node_address.removeprefix("0x"))


def make_proof(
    signer: Signer,
    domain_sep: bytes,
    *,
    facility_id: bytes,
    kind: Kind,
    evidence: bytes,
    issued_at: int,
    expires_at: int,
    sequence: int,
    subject: bytes | None = None,
    domain_id: bytes = _ZERO,
    secondary_domain_id: bytes = _ZERO,
    latitude_e6: int = 0,
    longitude_e6: int = 0,
) -> SignedProof:
    """Build and sign a proof. ``subject`` defaults to the facility id (all kinds but hardware)."""
    att = Attestation(
        facility_id=facility_id,
        kind=kind,
        subject=facility_id if subject is None else subject,
        domain_id=domain_id,
        secondary_domain_id=secondary_domain_id,
        latitude_e6=latitude_e6,
        longitude_e6=longitude_e6,
        evidence_hash=evidence_hash(evidence),
        issued_at=issued_at,
        expires_at=expires_at,
        sequence=sequence,
    )
    return SignedProof(att, evidence, signer.sign(domain_sep, att))
