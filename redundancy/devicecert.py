"""Device identity: Ed25519 keys, X.509 certificates issued by a facility operator's CA, and
the device-signed evidence envelope every site proof carries.

Chain of trust a verifier checks, from chain data alone:

1. the registry pins ``sha256(CA certificate DER)`` per facility (``caFingerprint``);
2. the CA and device certificates are published on-chain (``CertificatePublished`` events) and
   found by their sha256;
3. the device certificate is signed by that CA and valid at the evidence's ``observedAt``;
4. the evidence envelope's ``deviceSignature`` verifies under the device certificate's key.

Envelope (canonical JSON, see ``redundancy.evidence``)::

    {"v": 1, "kind": "power", "facility": "fra1", "observedAt": 1795000000,
     "body": {...probe facts...}, "deviceCert": "<sha256 hex of device cert DER>",
     "deviceSignature": "<hex Ed25519 signature>"}

The signature covers the canonical JSON of the envelope without ``deviceSignature``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from redundancy.checks import CheckResult
from redundancy.errors import EvidenceError
from redundancy.evidence import canonical_json, parse_document

ENVELOPE_VERSION = 1
SIGNATURE_FIELD = "deviceSignature"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(cert: x509.Certificate) -> bytes:
    """sha256 of the certificate's DER: what the registry pins and events are searched by."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def to_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(
    facility: str, key: Ed25519PrivateKey, *, days: int = 3650, now: dt.datetime | None = None
) -> x509.Certificate:
    """A self-signed CA certificate for a facility operator."""
    start = now or dt.datetime.now(dt.UTC)
    name = _name(f"{facility} device CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, None)
    )


def device_name(facility: str) -> str:
    """The common name of a facility's device certificate: what a peer checks an RTT answer's
    certificate names (an operator CA may issue for several facilities)."""
    return f"{facility} attestor"


def issue_device_cert(
    ca_cert: x509.Certificate,
    ca_key: Ed25519PrivateKey,
    device_public: Ed25519PublicKey,
    device_name: str,
    *,
    days: int = 365,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """A device certificate for an attestor's Ed25519 identity key, signed by the facility CA."""
    start = now or dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(device_name))
        .issuer_name(ca_cert.subject)
        .public_key(device_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, None)
    )


def sign_envelope(
    document: dict[str, Any], device_key: Ed25519PrivateKey, device_cert_sha256: str
) -> bytes:
    """Add ``deviceCert`` and ``deviceSignature`` to an envelope; returns its canonical JSON."""
    unsigned = {**document, "deviceCert": device_cert_sha256}
    unsigned.pop(SIGNATURE_FIELD, None)
    signature = device_key.sign(canonical_json(unsigned))
    return canonical_json({**unsigned, SIGNATURE_FIELD: signature.hex()})


def parse_envelope(evidence: bytes) -> dict[str, Any]:
    """Decode an evidence envelope read from chain data, within the bounds of
    ``parse_document`` (EvidenceError, a ValueError, if it is too large, too deep, not JSON or
    not a JSON object)."""
    doc = parse_document(evidence)
    if not isinstance(doc, dict):
        raise EvidenceError("evidence is not a JSON object")
    return doc


def canonical_check(doc: dict[str, Any], evidence: bytes) -> CheckResult:
    try:
        canonical = canonical_json(doc) == evidence
    except EvidenceError as exc:  # a float or another value canonical JSON refuses
        return CheckResult("evidence.canonical", False, f"not canonical: {exc}")
    return CheckResult(
        "evidence.canonical", canonical, "" if canonical else "not in canonical form"
    )


def _observation_check(doc: dict[str, Any], device_cert: x509.Certificate) -> CheckResult:
    observed = doc.get("observedAt")
    if not isinstance(observed, int) or isinstance(observed, bool):
        return CheckResult("evidence.observed_at", False, "observedAt missing or not an integer")
    try:
        at = dt.datetime.fromtimestamp(observed, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return CheckResult("evidence.observed_at", False, f"observedAt {observed} is out of range")
    valid = device_cert.not_valid_before_utc <= at <= device_cert.not_valid_after_utc
    return CheckResult(
        "certificate.device.valid_at_observation",
        valid,
        "" if valid else f"certificate not valid at {at.isoformat()}",
    )


def issued_by(device_cert: x509.Certificate, ca_cert: x509.Certificate) -> CheckResult:
    """Whether the CA signed the device certificate."""
    try:
        device_cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        return CheckResult("certificate.device.issued_by_ca", False, str(exc) or "bad CA signature")
    return CheckResult("certificate.device.issued_by_ca", True)


ChainCheck = Callable[[x509.Certificate, x509.Certificate], CheckResult]


def verify_envelope(
    evidence: bytes,
    device_cert: x509.Certificate | None,
    ca_cert: x509.Certificate | None,
    pinned_ca_fingerprint: bytes,
    chain_check: ChainCheck = issued_by,
) -> list[CheckResult]:
    """Every check of the evidence's device signature and certificate chain (all, not the first)."""
    checks: list[CheckResult] = []
    try:
        doc = parse_envelope(evidence)
    except (ValueError, UnicodeDecodeError) as exc:
        return [CheckResult("evidence.json", False, f"not a JSON object: {exc}")]
    checks.append(canonical_check(doc, evidence))
    if ca_cert is None:
        checks.append(
            CheckResult("certificate.ca.published", False, "CA certificate not found on-chain")
        )
    else:
        pinned = fingerprint(ca_cert) == pinned_ca_fingerprint
        checks.append(
            CheckResult(
                "certificate.ca.pinned",
                pinned,
                "" if pinned else "CA certificate does not match the registry's fingerprint",
            )
        )
    if device_cert is None:
        checks.append(
            CheckResult(
                "certificate.device.published",
                False,
                f"device certificate {doc.get('deviceCert')} not found on-chain",
            )
        )
        return checks
    cert_hash_ok = doc.get("deviceCert") == sha256_hex(to_der(device_cert))
    checks.append(
        CheckResult(
            "certificate.device.matches",
            cert_hash_ok,
            "" if cert_hash_ok else "evidence names another device certificate",
        )
    )
    if ca_cert is not None:
        checks.append(chain_check(device_cert, ca_cert))
    checks.append(_observation_check(doc, device_cert))
    checks.append(_check_signature(doc, device_cert))
    return checks


def _check_signature(doc: dict[str, Any], device_cert: x509.Certificate) -> CheckResult:
    key = device_cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        return CheckResult("evidence.device_signature", False, "device key is not Ed25519")
    sig_hex = doc.get(SIGNATURE_FIELD)
    if not isinstance(sig_hex, str):
        return CheckResult("evidence.device_signature", False, "deviceSignature missing")
    unsigned = {k: v for k, v in doc.items() if k != SIGNATURE_FIELD}
    try:
        key.verify(bytes.fromhex(sig_hex), canonical_json(unsigned))
    except (ValueError, InvalidSignature):
        return CheckResult("evidence.device_signature", False, "signature does not verify")
    return CheckResult("evidence.device_signature", True)
