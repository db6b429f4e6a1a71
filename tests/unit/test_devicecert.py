"""Device certificates and the device-signed evidence envelope: every check, all reported."""

from __future__ import annotations

import datetime as dt
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from redundancy.devicecert import (
    fingerprint,
    issue_device_cert,
    make_ca,
    sha256_hex,
    sign_envelope,
    to_der,
    verify_envelope,
)

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
OBSERVED = int(NOW.timestamp())


def setup() -> tuple[object, object, Ed25519PrivateKey, object]:
    ca_key = Ed25519PrivateKey.generate()
    ca = make_ca("fra1", ca_key, now=NOW)
    device_key = Ed25519PrivateKey.generate()
    device = issue_device_cert(ca, ca_key, device_key.public_key(), "fra1 attestor", now=NOW)
    return ca, ca_key, device_key, device


def envelope(device_key: Ed25519PrivateKey, device: object, **extra: object) -> bytes:
    doc = {
        "v": 1,
        "kind": "power",
        "facility": "fra1",
        "observedAt": OBSERVED,
        "body": {"grid": "amprion", "feeds": 2},
        **extra,
    }
    return sign_envelope(doc, device_key, sha256_hex(to_der(device)))  # type: ignore[arg-type]


def failed(checks: list[object]) -> set[str]:
    return {c.id for c in checks if not c.ok}  # type: ignore[attr-defined]


def test_valid_envelope_passes_every_check() -> None:
    ca, _, device_key, device = setup()
    checks = verify_envelope(envelope(device_key, device), device, ca, fingerprint(ca))  # type: ignore[arg-type]
    assert failed(checks) == set()
    assert {c.id for c in checks} >= {
        "certificate.ca.pinned",
        "certificate.device.issued_by_ca",
        "evidence.device_signature",
        "certificate.device.valid_at_observation",
    }


def test_tampered_body_fails_signature_only() -> None:
    ca, _, device_key, device = setup()
    doc = json.loads(envelope(device_key, device))
    doc["body"]["feeds"] = 3
    tampered = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert failed(verify_envelope(tampered, device, ca, fingerprint(ca))) == {  # type: ignore[arg-type]
        "evidence.device_signature"
    }


def test_device_cert_from_another_ca_and_unpinned_ca_are_both_reported() -> None:
    ca, _, device_key, device = setup()
    rogue_key = Ed25519PrivateKey.generate()
    rogue_ca = make_ca("fra1", rogue_key, now=NOW)
    checks = verify_envelope(envelope(device_key, device), device, rogue_ca, fingerprint(ca))  # type: ignore[arg-type]
    assert failed(checks) == {"certificate.ca.pinned", "certificate.device.issued_by_ca"}


def test_expired_device_certificate_is_reported() -> None:
    ca, ca_key, device_key, _ = setup()
    old = issue_device_cert(
        ca,
        ca_key,
        device_key.public_key(),
        "old",  # type: ignore[arg-type]
        days=1,
        now=NOW - dt.timedelta(days=30),
    )
    checks = verify_envelope(envelope(device_key, old), old, ca, fingerprint(ca))  # type: ignore[arg-type]
    assert failed(checks) == {"certificate.device.valid_at_observation"}


def test_missing_certificates_and_non_json_evidence() -> None:
    ca, _, device_key, device = setup()
    assert failed(verify_envelope(envelope(device_key, device), None, None, fingerprint(ca))) == {  # type: ignore[arg-type]
        "certificate.ca.published",
        "certificate.device.published",
    }
    assert failed(verify_envelope(b"not json", device, ca, fingerprint(ca))) == {"evidence.json"}  # type: ignore[arg-type]


def test_envelope_is_canonical_and_names_its_device_cert() -> None:
    _, _, device_key, device = setup()
    raw = envelope(device_key, device)
    doc = json.loads(raw)
    assert doc["deviceCert"] == sha256_hex(to_der(device))  # type: ignore[arg-type]
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
