"""EIP-712 typed data for site proofs: types, digests, signing and native recovery.

The encoding is written out by hand with the type hashes precomputed, and signing and recovery go
through libsecp256k1 (coincurve), because attestors sign and verifiers check many thousands of
proofs a second. A test holds this module to eth-account's generic ``encode_typed_data`` and to
the contract's own ``attestationDigest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_utils import keccak, to_checksum_address

from redundancy.domains import Kind
from redundancy.hashing import keccak256

DOMAIN_NAME = "RedundancyRegistry"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
#: The EIP-712 field list of an Attestation, in order (for eth-account's generic encoder).
ATTESTATION_FIELDS: list[dict[str, str]] = [
    {"name": "facilityId", "type": "bytes32"},
    {"name": "kind", "type": "uint8"},
    {"name": "subject", "type": "bytes32"},
    {"name": "domainId", "type": "bytes32"},
    {"name": "secondaryDomainId", "type": "bytes32"},
    {"name": "latitudeE6", "type": "int32"},
    {"name": "longitudeE6", "type": "int32"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "issuedAt", "type": "uint40"},
    {"name": "expiresAt", "type": "uint40"},
    {"name": "sequence", "type": "uint64"},
]
LATENCY_FIELDS: list[dict[str, str]] = [
    {"name": "facilityId", "type": "bytes32"},
    {"name": "peerFacilityId", "type": "bytes32"},
    {"name": "rttMicros", "type": "uint32"},
    {"name": "measuredAt", "type": "uint40"},
]


def _type_string(name: str, fields: list[dict[str, str]]) -> str:
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


ATTESTATION_TYPE = _type_string("Attestation", ATTESTATION_FIELDS)
LATENCY_TYPE = _type_string("LatencyMeasurement", LATENCY_FIELDS)
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
LATENCY_TYPEHASH = keccak(text=LATENCY_TYPE)
ATTESTATION_TYPEHASH = keccak(text=ATTESTATION_TYPE)


_ZERO32 = bytes(32)
_U40 = (1 << 40) - 1
_U64 = (1 << 64) - 1


def _signed32(word: int) -> int:
    value = word & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True, slots=True)
class Attestation:
    """One site proof, field for field as the contract's ``Attestation`` struct."""

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

    def as_tuple(self) -> tuple[bytes, int, bytes, bytes, bytes, int, int, bytes, int, int, int]:
        """The ABI tuple the contract takes."""
        return (
            self.facility_id,
            int(self.kind),
            self.subject,
            self.domain_id,
            self.secondary_domain_id,
            self.latitude_e6,
            self.longitude_e6,
            self.evidence_hash,
            self.issued_at,
            self.expires_at,
            self.sequence,
        )

    def as_message(self) -> dict[str, object]:
        """The EIP-712 message dict (for generic encoders and wallets)."""
        names = [f["name"] for f in ATTESTATION_FIELDS]
        return dict(zip(names, self.as_tuple(), strict=True))

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
class Signature:
    """A secp256k1 signature in the contract's (v, r, s) form."""

    v: int
    r: bytes
    s: bytes

    def to_bytes(self) -> bytes:
        """65 bytes r || s || v."""
        return self.r + self.s + bytes([self.v])

    def y_parity_and_s(self) -> bytes:
        """EIP-2098 compact form: s with the recovery bit (v - 27) in its top bit."""
        return ((self.v - 27) << 255 | int.from_bytes(self.s, "big")).to_bytes(32, "big")

    @classmethod
    def from_compact(cls, r: bytes, y_parity_and_s: bytes) -> Signature:
        """Parse the EIP-2098 compact form."""
        vs = int.from_bytes(y_parity_and_s, "big")
        return cls(27 + (vs >> 255), r, (vs & ((1 << 255) - 1)).to_bytes(32, "big"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Signature:
        """Parse 65 bytes r || s || v (v as 27/28 or 0/1)."""
        if len(raw) != 65:
            raise ValueError(f"signature must be 65 bytes, got {len(raw)}")
        v = raw[64] if raw[64] >= 27 else raw[64] + 27
        return cls(v, raw[:32], raw[32:64])


def domain_separator(chain_id: int, registry: str) -> bytes:
    """The registry's EIP-712 domain separator on a chain."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + _ZERO32[:12]
        + bytes.fromhex(registry[2:] if registry.startswith("0x") else registry)
    )


def _word(value: int) -> bytes:
    return (value % (1 << 256)).to_bytes(32, "big")


def struct_hash(a: Attestation) -> bytes:
    """hashStruct(Attestation)."""
    return keccak256(
        ATTESTATION_TYPEHASH
        + a.facility_id
        + _word(int(a.kind))
        + a.subject
        + a.domain_id
        + a.secondary_domain_id
        + _word(a.latitude_e6)
        + _word(a.longitude_e6)
        + a.evidence_hash
        + _word(a.issued_at)
        + _word(a.expires_at)
        + _word(a.sequence)
    )


def attestation_digest(domain_sep: bytes, a: Attestation) -> bytes:
    """The 32-byte digest the attestor signs: keccak256(0x1901 || domainSeparator || hashStruct)."""
    return keccak256(b"\x19\x01" + domain_sep + struct_hash(a))


@dataclass(frozen=True, slots=True)
class LatencyMeasurement:
    """A round trip measured by ``facility_id``'s attestor to ``peer_facility_id``."""

    facility_id: bytes
    peer_facility_id: bytes
    rtt_micros: int
    measured_at: int

    def as_tuple(self) -> tuple[bytes, bytes, int, int]:
        return (self.facility_id, self.peer_facility_id, self.rtt_micros, self.measured_at)


def latency_digest(domain_sep: bytes, m: LatencyMeasurement) -> bytes:
    """The digest an attestor signs for an RTT measurement (the registry's domain)."""
    struct = keccak(
        LATENCY_TYPEHASH
        + m.facility_id
        + m.peer_facility_id
        + _word(m.rtt_micros)
        + _word(m.measured_at)
    )
    return keccak(b"\x19\x01" + domain_sep + struct)


class Signer:
    """Signs attestation digests with one key, keeping the parsed key between calls."""

    __slots__ = ("_key", "address")

    def __init__(self, private_key: bytes) -> None:
        self._key = PrivateKey(private_key)
        self.address = public_key_to_address(self._key.public_key.format(compressed=False))

    def sign(self, domain_sep: bytes, a: Attestation) -> Signature:
        """Sign an attestation for the given domain."""
        return self.sign_hash(attestation_digest(domain_sep, a))

    def sign_hash(self, digest: bytes) -> Signature:
        """Sign a 32-byte EIP-712 digest."""
        raw = self._key.sign_recoverable(digest, hasher=None)
        return Signature(raw[64] + 27, raw[:32], raw[32:64])

    def __repr__(self) -> str:  # never show key material
        return f"Signer(address={self.address})"


def public_key_to_address(uncompressed: bytes) -> str:
    """Checksummed address of a 65-byte uncompressed public key."""
    return to_checksum_address(keccak(uncompressed[1:])[-20:])


def recover_address(digest: bytes, sig: Signature) -> bytes | None:
    """The raw 20-byte address that signed ``digest`` (None if malformed or high-s)."""
    if sig.v not in (27, 28) or int.from_bytes(sig.s, "big") > _SECP256K1_HALF_ORDER:
        return None
    try:
        pub = PublicKey.from_signature_and_message(
            sig.r + sig.s + bytes([sig.v - 27]), digest, hasher=None
        )
    except Exception:
        return None
    return keccak256(pub.format(compressed=False)[1:])[-20:]


def recover_signer(digest: bytes, sig: Signature) -> str | None:
    """The checksummed address that signed ``digest``, or None if malformed or high-s."""
    raw = recover_address(digest, sig)
    return to_checksum_address(raw) if raw is not None else None
