"""Native signing and recovery, packing, and signature forms (no chain)."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from redundancy.domains import Kind
from redundancy.eip712 import Attestation, Signature, Signer, attestation_digest, recover_signer

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
    assert recover_signer(attestation_digest(DS, a), sig) == Account.from_key(KEY).address


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
    digest = attestation_digest(DS, a)
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
    digest = attestation_digest(DS, a)
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = Signature(55 - sig.v, sig.r, (order - int.from_bytes(sig.s, "big")).to_bytes(32, "big"))
    assert recover_signer(digest, twin) is None
    assert recover_signer(digest, Signature(29, sig.r, sig.s)) is None


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
