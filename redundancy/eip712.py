"""EIP-712 typed data: domain separators, struct types, digests, signing and native recovery.

One encoder serves every struct the project signs (attestations and latency measurements under
the registry's domain, settlement batches under the ledger's). A ``StructType`` is described
once, by name and ordered fields; that precomputes its type string, its typehash and its
encoder: one word encoder per field (a range check and a 32-byte word), compiled together into
one function, so a digest costs one Python call whatever the field count. Only one-word
field types are supported: ``bytes32``, ``uint<N>``, ``int<N>`` (two's complement),
``address`` and ``bool``. The signed records are frozen dataclasses deriving ``TypedStruct``:
``record.digest(domain_separator)``, ``signer.sign(domain_separator, record)``.

Signing and recovery go through libsecp256k1 (coincurve), because attestors sign and verifiers
check many thousands of proofs a second. Tests hold every struct's digest to eth-account's
generic ``encode_typed_data`` and to the contracts' own digest views.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar, NoReturn

from coincurve import PrivateKey, PublicKey
from eth_utils import keccak, to_checksum_address

from redundancy.errors import TypedDataError
from redundancy.hashing import keccak256

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE.encode())
#: The EIP-712 field list of the domain, in order (for eth-account's generic encoder).
DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

_WORD_TRUE, _WORD_FALSE = (1).to_bytes(32, "big"), bytes(32)


# ------------------------------------------------------------------ word encoders
#
# Each field type has one word encoder: a range check and a 32-byte word, written as Python
# source over the field's value ``v<i>``. ``struct_type`` puts a struct's encoders, in field
# order, into one function compiled once per type: a digest then costs one Python call, not one
# per field (attestors sign and verifiers check many thousands a second). The source is built
# from the field types and indices only; names reach it through ``_Fields.refuse``.


def _bits(type_: str, prefix: str, where: str) -> int:
    digits = type_[len(prefix) :] or "256"
    bits = int(digits) if digits.isdigit() else 0
    if 8 <= bits <= 256 and bits % 8 == 0:
        return bits
    raise _unsupported(where, type_)


def _unsupported(where: str, type_: str) -> TypedDataError:
    return TypedDataError(
        f"{where}: {type_!r} is not a one-word EIP-712 type (bytes32, uint<N>, int<N>, "
        "address, bool)"
    )


def _word_code(type_: str, i: int, where: str) -> tuple[str, str]:
    """(check, word): Python expressions over ``v<i>`` that test a value of ``type_`` fits and
    give its 32-byte word. Raises TypedDataError (naming ``where``) for a type that is not one
    word (strings, dynamic bytes, arrays, structs)."""
    v = f"v{i}"
    if type_ == "bytes32":
        return f"len({v}) == 32", v
    if type_ == "address":
        return "True", f"address_word({v}, {i})"
    if type_ == "bool":
        return f"{v} is True or {v} is False", f"(TRUE if {v} else FALSE)"
    if type_.startswith("uint"):
        bits = _bits(type_, "uint", where)
        return f"0 <= {v} < {1 << bits}", f"{v}.to_bytes(32, 'big')"
    if type_.startswith("int"):
        bits = _bits(type_, "int", where)
        low, high = -(1 << (bits - 1)), 1 << (bits - 1)
        return f"{low} <= {v} < {high}", f"{v}.to_bytes(32, 'big', signed=True)"
    raise _unsupported(where, type_)


@dataclass(frozen=True, slots=True)
class _Fields:
    """What compiled encoders call on the error path (and for addresses)."""

    struct: str
    fields: tuple[tuple[str, str], ...]

    def refuse(self, i: int, value: object) -> NoReturn:
        name, type_ = self.fields[i]
        raise TypedDataError(f"{self.struct}.{name}: {value!r} does not fit {type_}")

    def count(self, given: int) -> NoReturn:
        raise TypedDataError(f"{self.struct} has {len(self.fields)} fields, {given} values given")

    def address_word(self, value: str | bytes, i: int) -> bytes:
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value.removeprefix("0x"))
            except ValueError:
                raw = b""
        else:
            raw = value
        if len(raw) == 20:
            return bytes(12) + raw
        self.refuse(i, value)


def _compile_encoder(
    name: str, fields: tuple[tuple[str, str], ...], typehash: bytes
) -> Callable[[Sequence[Any]], bytes]:
    """typehash || one word per field, for values in field order, as one compiled function."""
    codes = [_word_code(t, i, f"{name}.{n}") for i, (n, t) in enumerate(fields)]
    lines = ["def encode(values):", f"    if len(values) != {len(fields)}: count(len(values))"]
    if fields:
        lines.append("    " + "".join(f"v{i}, " for i in range(len(fields))) + "= values")
    lines += [f"    if not ({check}): refuse({i}, v{i})" for i, (check, _) in enumerate(codes)]
    lines.append("    return b''.join((TYPEHASH, " + "".join(f"{w}, " for _, w in codes) + "))")
    errors = _Fields(name, fields)
    namespace: dict[str, Any] = {
        "TYPEHASH": typehash,
        "TRUE": _WORD_TRUE,
        "FALSE": _WORD_FALSE,
        "refuse": errors.refuse,
        "count": errors.count,
        "address_word": errors.address_word,
    }
    exec(compile("\n".join(lines), f"<eip712 {name}>", "exec"), namespace)
    encode: Callable[[Sequence[Any]], bytes] = namespace["encode"]
    return encode


# -------------------------------------------------------------------- struct types

_DOMAIN = _Fields("EIP712Domain", tuple((f["name"], f["type"]) for f in DOMAIN_FIELDS))


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """hashStruct(EIP712Domain) of a contract's domain: name, version, chain id and address
    (``0x`` hex, with or without checksum)."""
    return keccak256(
        DOMAIN_TYPEHASH
        + keccak256(name.encode())
        + keccak256(version.encode())
        + chain_id.to_bytes(32, "big")
        + _DOMAIN.address_word(verifying_contract, 3)
    )


@dataclass(frozen=True, slots=True)
class StructType:
    """An EIP-712 struct type: its name and ordered (name, type) fields, with the type string,
    typehash and encoder precomputed (build it with ``struct_type``). ``encode`` gives
    typehash || one word per field for values in field order (TypedDataError if one does not
    fit its field, or the count is wrong).

    ``values_of`` reads a record's values in field order from its attributes, named as the
    fields in snake_case (``latitudeE6`` is ``latitude_e6``): see ``TypedStruct``.
    """

    name: str
    fields: tuple[tuple[str, str], ...]
    type_string: str
    typehash: bytes
    encode: Callable[[Sequence[Any]], bytes]
    values_of: Callable[[object], tuple[Any, ...]]

    def eip712_fields(self) -> list[dict[str, str]]:
        """The field list as generic encoders and wallets take it."""
        return [{"name": n, "type": t} for n, t in self.fields]

    def message(self, values: Sequence[object]) -> dict[str, object]:
        """The EIP-712 message dict of values given in field order."""
        return dict(zip((n for n, _ in self.fields), values, strict=True))


_CAPITAL = re.compile(r"(?<!^)(?=[A-Z])")


def attribute_name(field: str) -> str:
    """The Python attribute of an EIP-712 field: ``peerFacilityId`` -> ``peer_facility_id``."""
    return _CAPITAL.sub("_", field).lower()


def struct_type(name: str, fields: Sequence[tuple[str, str]]) -> StructType:
    """Describe a struct by name and ordered (field name, field type) pairs."""
    type_string = f"{name}(" + ",".join(f"{t} {n}" for n, t in fields) + ")"
    typehash = keccak256(type_string.encode())
    attributes = [attribute_name(n) for n, _ in fields]
    return StructType(
        name,
        tuple(fields),
        type_string,
        typehash,
        _compile_encoder(name, tuple(fields), typehash),
        # attrgetter of two or more names gives a tuple in one C call (the signing hot path)
        attrgetter(*attributes)
        if len(attributes) > 1
        else lambda record: tuple(getattr(record, a) for a in attributes),
    )


def hash_struct(struct: StructType, values: Sequence[Any]) -> bytes:
    """hashStruct: keccak256(typehash || one word per field), values in field order."""
    return keccak256(struct.encode(values))


def typed_digest(domain_sep: bytes, struct: StructType, values: Sequence[Any]) -> bytes:
    """The 32-byte digest a signer signs: keccak256(0x1901 || domainSeparator || hashStruct)."""
    return keccak256(b"\x19\x01" + domain_sep + keccak256(struct.encode(values)))


class TypedStruct:
    """Base of a frozen dataclass that is an EIP-712 struct: the subclass names its type in
    ``STRUCT``, whose fields are the dataclass's attributes in order (camelCase there,
    snake_case here). A unit test holds each subclass's fields to its struct's."""

    __slots__ = ()
    STRUCT: ClassVar[StructType]

    def as_tuple(self) -> tuple[Any, ...]:
        """The values in field order: the ABI tuple the contract takes."""
        return self.STRUCT.values_of(self)

    def as_message(self) -> dict[str, object]:
        """The EIP-712 message dict (for generic encoders and wallets)."""
        return self.STRUCT.message(self.as_tuple())

    def digest(self, domain_sep: bytes) -> bytes:
        """The 32-byte digest a signer signs for this struct under ``domain_sep``."""
        struct = self.STRUCT
        return typed_digest(domain_sep, struct, struct.values_of(self))


# ------------------------------------------------------------- signing, recovery


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


class Signer:
    """Signs EIP-712 digests with one key, keeping the parsed key between calls."""

    __slots__ = ("_key", "address")

    def __init__(self, private_key: bytes) -> None:
        self._key = PrivateKey(private_key)
        self.address = public_key_to_address(self._key.public_key.format(compressed=False))

    def sign(self, domain_sep: bytes, struct: TypedStruct) -> Signature:
        """Sign a typed struct (an attestation, a latency measurement, a batch) under a domain."""
        return self.sign_hash(struct.digest(domain_sep))

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
    """The raw 20-byte address that signed ``digest`` (None if malformed or high-s).

    r and s must be 32 bytes each: joined, a 33-byte r and a 31-byte s are the same 64 bytes as
    the real pair and would recover the real signer from a signature no contract accepts."""
    if len(sig.r) != 32 or len(sig.s) != 32:
        return None
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
