"""The TPM structure parsers and the envelope's shape checks, on hand-made bytes (the real
quotes are tested against swtpm in tests/integration/test_tpm_quotes.py)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from redundancy.tpmquote import (
    TPM_GENERATED_VALUE,
    TpmContext,
    TpmStructureError,
    parse_ak_public,
    parse_attest,
    parse_signature,
    verify_tpm_envelope,
)


def attest(extra: bytes = b"\x01" * 32, pcrs: int = 0b1, kind: int = 0x8018) -> bytes:
    return (
        struct.pack(">IH", TPM_GENERATED_VALUE, kind)
        + struct.pack(">H", 34) + b"\x00\x0b" + b"\x00" * 32
        + struct.pack(">H", len(extra)) + extra
        + struct.pack(">QIIB", 1, 2, 3, 1) + struct.pack(">Q", 7)
        + struct.pack(">I", 1) + struct.pack(">HB", 0x000B, 3) + pcrs.to_bytes(3, "little")
        + struct.pack(">H", 32) + hashlib.sha256(b"pcr").digest()
    )  # fmt: skip


def test_a_quote_parses_with_its_pcr_selection() -> None:
    q = parse_attest(attest(pcrs=0b101))
    assert q.magic == TPM_GENERATED_VALUE and q.extra_data == b"\x01" * 32
    assert q.pcr_selection == ((0x000B, (0, 2)),)
    assert (q.clock, q.reset_count, q.restart_count, q.safe, q.firmware_version) == (
        1, 2, 3, True, 7,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (attest()[:-1], "truncated"),
        (attest() + b"\x00", "trailing"),
        (attest(kind=0x8017), "not a quote"),
        (b"", "truncated"),
    ],
)
def test_malformed_quotes_are_refused_by_name(data: bytes, message: str) -> None:
    with pytest.raises(TpmStructureError, match=message):
        parse_attest(data)


def test_signatures_other_than_ecdsa_sha256_are_refused() -> None:
    rsa = struct.pack(">HH", 0x0014, 0x000B) + struct.pack(">H", 1) + b"\x00"
    with pytest.raises(TpmStructureError, match="not ECDSA-SHA256"):
        parse_signature(rsa)
    ok = struct.pack(">HH", 0x0018, 0x000B) + struct.pack(">H", 1) + b"\x05" * 1
    ok += struct.pack(">H", 1) + b"\x07"
    assert parse_signature(ok)  # DER-encoded (r, s)


def test_storage_keys_and_other_curves_are_not_attestation_keys() -> None:
    head = struct.pack(">HHI", 0x0023, 0x000B, 0x00050072) + struct.pack(">H", 0)
    point = struct.pack(">H", 32) + b"\x01" * 32 + struct.pack(">H", 32) + b"\x02" * 32
    storage = head + struct.pack(">HHH", 0x0006, 128, 0x0043) + struct.pack(">HHH", 0x10, 3, 0x10)
    with pytest.raises(TpmStructureError, match="storage key"):
        parse_ak_public(storage + point)
    p384 = head + struct.pack(">HHHHH", 0x10, 0x18, 0x0B, 0x0004, 0x10)
    with pytest.raises(TpmStructureError, match="not NIST P-256"):
        parse_ak_public(p384 + point)


H = "00" * 32


def tpm_facts(chain: list[str], pcrs: dict[str, str]) -> dict[str, object]:
    return {"akCert": H, "ekCert": H, "caChain": chain, "pcrs": pcrs}


@pytest.mark.parametrize(
    "change",
    [
        {"tpm": None},
        {"nonce": {"block": -1, "hash": "00" * 32}},
        {"nonce": {"block": True, "hash": "00" * 32}},
        {"tpm": {"akCert": "zz", "ekCert": "00" * 32, "caChain": ["00" * 32], "pcrs": {}}},
        {
            "tpm": {
                "akCert": "00" * 32,
                "ekCert": "00" * 32,
                "caChain": [],
                "pcrs": {"0": "00" * 32},
            }
        },
        {
            "tpm": {
                "akCert": "00" * 32,
                "ekCert": "00" * 32,
                "caChain": ["00" * 32] * 9,
                "pcrs": {"0": "00" * 32},
            }
        },
        {
            "tpm": {
                "akCert": "00" * 32,
                "ekCert": "00" * 32,
                "caChain": ["00" * 32],
                "pcrs": {"24": "00" * 32},
            }
        },
        {"quote": {"attest": "xyz", "signature": ""}},
        {"observedAt": "soon"},
    ],
)
def test_malformed_envelopes_fail_the_envelope_check_alone(change: dict[str, object]) -> None:
    doc: dict[str, object] = {
        "v": 1, "identity": "tpm", "kind": "health", "facility": "fra1", "observedAt": 1,
        "body": {}, "nonce": {"block": 1, "hash": "00" * 32},
        "tpm": {"akCert": "00" * 32, "ekCert": "00" * 32, "caChain": ["00" * 32],
                "pcrs": {"0": "00" * 32}},
        "quote": {"attest": "00", "signature": "00"},
    }  # fmt: skip
    doc.update(change)
    ctx = TpmContext(lambda _h: None, set(), lambda _n: None, 1, "health", bytes(32))
    results = verify_tpm_envelope(doc, ctx)
    assert [(r.id, r.ok) for r in results] == [("tpm.envelope", False)]
