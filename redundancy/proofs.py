"""Signed site proofs and RTT measurements: the structs an attestor signs under the registry's
EIP-712 domain, their digests, and the shape the registry and selector take them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redundancy.domains import Kind
from redundancy.eip712 import (
    Signature,
    Signer,
    TypedStruct,
    domain_separator,
    recover_signer,
    struct_type,
)
from redundancy.evidence import evidence_hash
from redundancy.hashing import keccak256

#: The registry's EIP-712 domain (the selector checks RTT measurements under it too).
REGISTRY_DOMAIN_NAME = "RedundancyRegistry"
REGISTRY_DOMAIN_VERSION = "1"

ATTESTATION = struct_type(
    "Attestation",
    [
        ("facilityId", "bytes32"),
        ("kind", "uint8"),
        ("subject", "bytes32"),
        ("domainId", "bytes32"),
        ("secondaryDomainId", "bytes32"),
        ("latitudeE6", "int32"),
        ("longitudeE6", "int32"),
        ("evidenceHash", "bytes32"),
        ("issuedAt", "uint40"),
        ("expiresAt", "uint40"),
        ("sequence", "uint64"),
    ],
)
LATENCY_MEASUREMENT = struct_type(
    "LatencyMeasurement",
    [
        ("facilityId", "bytes32"),
        ("peerFacilityId", "bytes32"),
        ("rttMicros", "uint32"),
        ("measuredAt", "uint40"),
        ("anchorBlock", "uint64"),
        ("anchorHash", "bytes32"),
        ("exchangeId", "bytes32"),
    ],
)

VALIDATOR_BINDING = struct_type(
    "ValidatorBinding",
    [
        ("validator", "address"),
        ("node", "address"),
        ("facilityId", "bytes32"),
        ("nonce", "uint64"),
        ("deadline", "uint40"),
    ],
)

_U40 = (1 << 40) - 1
_U64 = (1 << 64) - 1


def registry_domain_separator(chain_id: int, registry: str) -> bytes:
    """The registry's EIP-712 domain separator on a chain."""
    return domain_separator(REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, chain_id, registry)


def _signed32(word: int) -> int:
    value = word & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(frozen=True, slots=True)
class Attestation(TypedStruct):
    """One site proof, field for field as the contract's ``Attestation`` struct."""

    STRUCT = ATTESTATION

    facility_id: bytes
    kind: Kind
    subject: bytes
    domain_id: bytes
    secondary_domain_id: bytes
    latitude_e6: int
    longitude_e6: int
    evidence_hash: bytes
    issued_at: int
    expires_at: int
    sequence: int

    def packed(self) -> int:
        """The six small fields in one word, as the contract's ``SignedAttestation.packed``."""
        return (
            (int(self.kind) << 208)
            | ((self.latitude_e6 & 0xFFFFFFFF) << 176)
            | ((self.longitude_e6 & 0xFFFFFFFF) << 144)
            | (self.issued_at << 104)
            | (self.expires_at << 64)
            | self.sequence
        )

    @classmethod
    def from_packed(
        cls,
        facility_id: bytes,
        subject: bytes,
        domain_id: bytes,
        secondary_domain_id: bytes,
        evidence_hash: bytes,
        packed: int,
    ) -> Attestation:
        """Spread a submitted proof's packed word back into fields (raises ValueError if the
        word has bits above the kind, or an unknown kind)."""
        if packed >> 216:
            raise ValueError(f"packed word {packed:#x} has bits set above the kind")
        return cls(
            facility_id,
            Kind(packed >> 208 & 0xFF),
            subject,
            domain_id,
            secondary_domain_id,
            _signed32(packed >> 176),
            _signed32(packed >> 144),
            evidence_hash,
            packed >> 104 & _U40,
            packed >> 64 & _U40,
            packed & _U64,
        )

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> Attestation:
        """Build from the ABI tuple (as decoded from calldata or returned by a call)."""
        f, k, sub, d1, d2, lat, lon, ev, iss, exp, seq = values
        return cls(
            bytes(f),
            Kind(int(k)),
            bytes(sub),
            bytes(d1),
            bytes(d2),
            int(lat),
            int(lon),
            bytes(ev),
            int(iss),
            int(exp),
            int(seq),
        )


@dataclass(frozen=True, slots=True)
class LatencyMeasurement(TypedStruct):
    """One end's view of one RTT exchange: the round trip ``facility_id``'s attestor measured
    to ``peer_facility_id`` in exchange ``exchange_id`` (keccak256 of the two ends' nonces), when
    (``measured_at``, seconds), and a recent block it saw (``anchor_block``, ``anchor_hash``),
    which bounds how long the signed measurement can be relayed."""

    STRUCT = LATENCY_MEASUREMENT

    facility_id: bytes
    peer_facility_id: bytes
    rtt_micros: int
    measured_at: int
    anchor_block: int
    anchor_hash: bytes
    exchange_id: bytes

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> LatencyMeasurement:
        """Build from the ABI tuple (as decoded from calldata)."""
        f, p, rtt, at, block, anchor, exchange = values
        return cls(
            bytes(f), bytes(p), int(rtt), int(at), int(block), bytes(anchor), bytes(exchange)
        )


@dataclass(frozen=True, slots=True)
class ValidatorBinding(TypedStruct):
    """What a node's key signs, under the registry's domain, to let ``validator`` register on
    it at ``facility_id``: proof that the registrant controls the node, so nobody can squat a
    freshly attested node. ``nonce`` is the node's binding nonce on chain (registrations on it
    so far: each binding is used at most once); the registry refuses it from ``deadline`` on."""

    STRUCT = VALIDATOR_BINDING

    validator: str
    node: str
    facility_id: bytes
    nonce: int
    deadline: int


@dataclass(frozen=True, slots=True)
class SignedBinding:
    """A validator binding and the node key's signature over it."""

    binding: ValidatorBinding
    signature: Signature


def exchange_id(challenger_nonce: bytes, responder_nonce: bytes) -> bytes:
    """The id both ends of an RTT exchange sign: keccak256(challenger nonce || responder nonce)."""
    return keccak256(challenger_nonce + responder_nonce)


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
        return recover_signer(self.attestation.digest(domain_sep), self.signature)

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
