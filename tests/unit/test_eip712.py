"""The generic EIP-712 encoder against eth-account's, native signing and recovery, packing, and
signature forms (no chain)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from redundancy.batches import (
    LEDGER_DOMAIN_NAME,
    LEDGER_DOMAIN_VERSION,
    SETTLEMENT_BATCH,
    Batch,
    ledger_domain_separator,
)
from redundancy.domains import Kind
from redundancy.eip712 import (
    DOMAIN_FIELDS,
    Signature,
    Signer,
    StructType,
    TypedStruct,
    attribute_name,
    domain_separator,
    hash_struct,
    recover_signer,
    struct_type,
    typed_digest,
)
from redundancy.errors import TypedDataError
from redundancy.proofs import (
    ATTESTATION,
    REGISTRY_DOMAIN_NAME,
    REGISTRY_DOMAIN_VERSION,
    Attestation,
    LatencyMeasurement,
    ValidatorBinding,
    registry_domain_separator,
)

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
DS = bytes(range(32))

attestations = st.builds(
    Attestation,
    facility_id=st.binary(min_size=32, max_size=32),
    kind=st.sampled_from(list(Kind)),
    subject=st.binary(min_size=32, max_size=32),
    domain_id=st.binary(min_size=32, max_size=32),
    secondary_domain_id=st.binary(min_size=32, max_size=32),
    latitude_e6=st.integers(-(2**31), 2**31 - 1),
    longitude_e6=st.integers(-(2**31), 2**31 - 1),
    evidence_hash=st.binary(min_size=32, max_size=32),
    issued_at=st.integers(0, 2**40 - 1),
    expires_at=st.integers(0, 2**40 - 1),
    sequence=st.integers(0, 2**64 - 1),
)


bytes32 = st.binary(min_size=32, max_size=32)
latencies = st.builds(
    LatencyMeasurement,
    facility_id=bytes32,
    peer_facility_id=bytes32,
    rtt_micros=st.integers(0, 2**32 - 1),
    measured_at=st.integers(0, 2**40 - 1),
    anchor_block=st.integers(0, 2**64 - 1),
    anchor_hash=bytes32,
    exchange_id=bytes32,
)
u64 = st.integers(0, 2**64 - 1)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
bindings = st.builds(
    ValidatorBinding,
    validator=addresses,
    node=addresses,
    facility_id=bytes32,
    nonce=u64,
    deadline=st.integers(0, 2**40 - 1),
)
batches = st.builds(Batch, epoch=u64, first_sequence=u64, last_sequence=u64, state_root=bytes32)
domains = st.tuples(
    st.integers(1, 2**64), st.binary(min_size=20, max_size=20).map(to_checksum_address)
)


def eth_account_digest(
    domain: tuple[str, str, int, str], struct: StructType, values: Sequence[Any]
) -> bytes:
    """The digest eth-account's generic encoder gives a struct's values under a domain."""
    name, version, chain_id, contract = domain
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": DOMAIN_FIELDS, struct.name: struct.eip712_fields()},
            "primaryType": struct.name,
            "domain": {
                "name": name,
                "version": version,
                "chainId": chain_id,
                "verifyingContract": contract,
            },
            "message": struct.message(values),
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@pytest.mark.parametrize(
    ("records", "name", "version", "separator"),
    [
        (attestations, REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, registry_domain_separator),
        (latencies, REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, registry_domain_separator),
        (bindings, REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, registry_domain_separator),
        (batches, LEDGER_DOMAIN_NAME, LEDGER_DOMAIN_VERSION, ledger_domain_separator),
    ],
    ids=["Attestation", "LatencyMeasurement", "ValidatorBinding", "SettlementBatch"],
)
@given(data=st.data())
def test_digest_of_every_signed_struct_equals_eth_account(
    records: st.SearchStrategy[TypedStruct],
    name: str,
    version: str,
    separator: Callable[[int, str], bytes],
    data: st.DataObject,
) -> None:
    record = data.draw(records)
    chain_id, contract = data.draw(domains)
    ours = record.digest(separator(chain_id, contract))
    theirs = eth_account_digest(
        (name, version, chain_id, contract), record.STRUCT, record.as_tuple()
    )
    assert ours == theirs


MIXED = struct_type(
    "Mixed", [("who", "address"), ("ok", "bool"), ("delta", "int256"), ("amount", "uint")]
)


@given(
    st.binary(min_size=20, max_size=20).map(to_checksum_address),
    st.booleans(),
    st.integers(-(2**255), 2**255 - 1),
    st.integers(0, 2**256 - 1),
    domains,
)
def test_address_bool_and_wide_integers_equal_eth_account(
    who: str, ok: bool, delta: int, amount: int, domain: tuple[int, str]
) -> None:
    chain_id, contract = domain
    values = (who, ok, delta, amount)
    ours = typed_digest(domain_separator("Mixed", "2", chain_id, contract), MIXED, values)
    assert ours == eth_account_digest(("Mixed", "2", chain_id, contract), MIXED, values)


@pytest.mark.parametrize("record", [Attestation, LatencyMeasurement, ValidatorBinding, Batch])
def test_record_attributes_are_the_struct_fields_in_order(record: type[TypedStruct]) -> None:
    names = [f.name for f in dataclasses.fields(record)]  # type: ignore[arg-type]
    assert names == [attribute_name(n) for n, _ in record.STRUCT.fields]


def test_a_one_field_record_reads_as_a_one_tuple() -> None:
    @dataclasses.dataclass(frozen=True)
    class Tick:
        block_number: int

    one = struct_type("Tick", [("blockNumber", "uint64")])
    assert one.values_of(Tick(7)) == (7,)
    assert one.type_string == "Tick(uint64 blockNumber)"


def test_type_string_and_typehash_are_precomputed() -> None:
    assert SETTLEMENT_BATCH.type_string == (
        "SettlementBatch(uint64 epoch,uint64 firstSequence,uint64 lastSequence,bytes32 stateRoot)"
    )
    assert SETTLEMENT_BATCH.typehash == keccak(text=SETTLEMENT_BATCH.type_string)
    assert len(ATTESTATION.fields) == 11


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, b"\x01" * 31, "Attestation.facilityId: .* does not fit bytes32"),
        (1, 256, "Attestation.kind: 256 does not fit uint8"),
        (1, -1, "Attestation.kind: -1 does not fit uint8"),
        (5, 2**31, "Attestation.latitudeE6: 2147483648 does not fit int32"),
        (6, -(2**31) - 1, "Attestation.longitudeE6: -2147483649 does not fit int32"),
        (10, 2**64, "Attestation.sequence: 18446744073709551616 does not fit uint64"),
    ],
)
def test_a_value_that_does_not_fit_its_field_is_refused(
    index: int, value: object, message: str
) -> None:
    values: list[object] = [bytes(32), 1, bytes(32), bytes(32), bytes(32), 0, 0, bytes(32), 1, 2, 3]
    values[index] = value
    with pytest.raises(TypedDataError, match=message):
        hash_struct(ATTESTATION, values)


def test_wrong_value_count_address_and_bool_are_refused() -> None:
    with pytest.raises(TypedDataError, match="Attestation has 11 fields, 3 values given"):
        hash_struct(ATTESTATION, [bytes(32)] * 3)
    with pytest.raises(TypedDataError, match=r"Mixed\.who: '0x1234' does not fit address"):
        hash_struct(MIXED, ["0x1234", True, 0, 0])
    with pytest.raises(TypedDataError, match=r"Mixed\.ok: 1 does not fit bool"):
        hash_struct(MIXED, ["0x" + "00" * 20, 1, 0, 0])
    with pytest.raises(TypedDataError, match=r"EIP712Domain\.verifyingContract: '0xzz'"):
        domain_separator("Mixed", "2", 1, "0xzz")


@pytest.mark.parametrize("type_", ["string", "bytes", "bytes16", "uint7", "int264", "uint256[]"])
def test_types_other_than_one_word_are_refused(type_: str) -> None:
    with pytest.raises(TypedDataError, match=r"^Bad\.x: '.*' is not a one-word EIP-712 type"):
        struct_type("Bad", [("x", type_)])


@given(attestations)
def test_packing_round_trips(a: Attestation) -> None:
    packed = a.packed()
    assert packed >> 216 == 0
    assert (
        Attestation.from_packed(
            a.facility_id, a.subject, a.domain_id, a.secondary_domain_id, a.evidence_hash, packed
        )
        == a
    )


@given(attestations)
def test_signer_is_recovered(a: Attestation) -> None:
    signer = Signer(KEY)
    sig = signer.sign(DS, a)
    assert recover_signer(a.digest(DS), sig) == Account.from_key(KEY).address


def test_signature_matches_eth_account_unsafe_sign_hash() -> None:
    a = Attestation(
        b"\x01" * 32,
        Kind.POWER,
        b"\x01" * 32,
        b"\x02" * 32,
        bytes(32),
        0,
        0,
        b"\x03" * 32,
        10,
        20,
        1,
    )
    digest = a.digest(DS)
    ours = Signer(KEY).sign(DS, a)
    theirs = Account.unsafe_sign_hash(digest, KEY)
    assert (ours.v, int.from_bytes(ours.r, "big"), int.from_bytes(ours.s, "big")) == (
        theirs.v,
        theirs.r,
        theirs.s,
    )


def test_high_s_and_bad_v_do_not_recover() -> None:
    a = Attestation(
        b"\x01" * 32, Kind.HEALTH, b"\x01" * 32, bytes(32), bytes(32), 0, 0, bytes(32), 1, 2, 3
    )
    sig = Signer(KEY).sign(DS, a)
    digest = a.digest(DS)
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = Signature(55 - sig.v, sig.r, (order - int.from_bytes(sig.s, "big")).to_bytes(32, "big"))
    assert recover_signer(digest, twin) is None
    assert recover_signer(digest, Signature(29, sig.r, sig.s)) is None


def test_r_and_s_of_other_lengths_do_not_recover_though_their_bytes_join_alike() -> None:
    a = Attestation(
        b"\x01" * 32, Kind.HEALTH, b"\x01" * 32, bytes(32), bytes(32), 0, 0, bytes(32), 1, 2, 3
    )
    sig = Signer(KEY).sign(DS, a)
    digest = a.digest(DS)
    assert recover_signer(digest, sig) == Account.from_key(KEY).address
    for shift in (1, -1):
        r, s = (sig.r + sig.s[:1], sig.s[1:]) if shift > 0 else (sig.r[:-1], sig.r[-1:] + sig.s)
        assert r + s == sig.r + sig.s
        assert recover_signer(digest, Signature(sig.v, r, s)) is None


def test_packed_word_with_high_bits_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="bits set above the kind"):
        Attestation.from_packed(bytes(32), bytes(32), bytes(32), bytes(32), bytes(32), 1 << 220)


def test_signer_repr_hides_key() -> None:
    assert KEY.hex() not in repr(Signer(KEY))


@given(st.binary(max_size=1_000))
def test_native_keccak_equals_eth_utils(data: bytes) -> None:
    from eth_utils import keccak

    from redundancy.hashing import keccak256

    assert keccak256(data) == keccak(data)
