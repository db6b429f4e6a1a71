"""TPM-rooted device identity: parse and verify TPM 2.0 quotes, attestation-key (AK)
certificates and the endorsement-key (EK) chain to a pinned manufacturer CA. Pure: no TPM, no
process; the structures are parsed from their TPM 2.0 wire form with ``struct`` and checked with
``cryptography``.

Chain of trust a verifier checks (``verify_tpm_envelope``), from chain data alone:

1. the manufacturer's root CA is pinned (its sha256 fingerprint is in the accepted set);
2. the EK certificate chains up to it (``tpm.caChain``: issuing CA first, root last);
3. the AK certificate is issued by the same issuing CA and names the EK certificate (extension
   ``EK_CERT_OID`` = sha256 of the EK certificate DER) and the AK's ``TPMT_PUBLIC``
   (extension ``AK_PUBLIC_OID``): a restricted, fixedTPM, signing ECC P-256 key whose point is the
   certificate's key. The issuer signs it only after ``TPM2_ActivateCredential`` proved the AK
   lives in the TPM holding that EK (the TCG IAK model);
4. the quote (``TPMS_ATTEST``) is signed by the AK, is a TPM-generated quote, its
   ``extraData`` is sha256 of the envelope without ``quote`` (so it covers the evidence and the
   nonce), and its PCR digest is sha256 of the PCR values the envelope declares;
5. the nonce is a block hash that the chain holds, no older than ``MAX_NONCE_AGE`` seconds
   before the proof was issued, and not after it (beyond the policy's clock skew);
6. for a hardware proof, the proof's domain id is ``tpm_hardware_domain(PCR 0)``.

Envelope (canonical JSON)::

    {"v": 1, "identity": "tpm", "kind": "hardware", "facility": "fra1", "observedAt": 1795000000,
     "body": {...}, "nonce": {"block": 123, "hash": "<64 hex>"},
     "tpm": {"akCert": "<sha256 hex>", "ekCert": "<sha256 hex>", "caChain": ["<sha256 hex>"...],
             "pcrs": {"0": "<64 hex>"}},
     "quote": {"attest": "<hex TPMS_ATTEST>", "signature": "<hex TPMT_SIGNATURE>"}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from redundancy.checks import CheckResult
from redundancy.devicecert import fingerprint, sha256_hex, to_der
from redundancy.domains import Dimension, DomainId, domain_id
from redundancy.errors import EvidenceError
from redundancy.evidence import canonical_json

IDENTITY_TPM = "tpm"
QUOTE_FIELD = "quote"
#: PCRs quoted and what each one is for. Only PCR 0 (SRTM: the core firmware's code, CRTM and
#: POST BIOS/UEFI, as measured by the platform before it runs) names the hardware domain: it is
#: the same on every machine that runs the same firmware image, and changes with it. PCR 1 (firmware
#: configuration, SMBIOS tables with serial numbers) differs per machine; PCR 2-7 (option ROMs,
#: boot loader, Secure Boot policy) follow installed cards and the OS, not a common firmware defect.
QUOTED_PCRS = (0,)
HARDWARE_PCR = 0
#: How long before a proof's issuedAt its nonce block may be (seconds).
MAX_NONCE_AGE = 600

# Object identifiers of the AK certificate's two extensions (a UUID arc, 2.25.<uuid>: no
# registration needed). Their values are the raw bytes (DER OCTET STRING content not wrapped).
AK_PUBLIC_OID = x509.ObjectIdentifier("2.25.201518399180123947210236489146622187791.1")
EK_CERT_OID = x509.ObjectIdentifier("2.25.201518399180123947210236489146622187791.2")

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
TPM_ALG_ECC = 0x0023
TPM_ALG_ECDSA = 0x0018
TPM_ALG_SHA256 = 0x000B
TPM_ALG_NULL = 0x0010
TPM_ECC_NIST_P256 = 0x0003
# objectAttributes bits
FIXED_TPM = 1 << 1
FIXED_PARENT = 1 << 4
SENSITIVE_DATA_ORIGIN = 1 << 5
RESTRICTED = 1 << 16
SIGN = 1 << 18
AK_ATTRIBUTES = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | RESTRICTED | SIGN


class TpmStructureError(EvidenceError):
    """Raised when a TPM structure (TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC) is truncated,
    has trailing bytes or uses an algorithm this verifier does not accept."""


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TpmStructureError(f"{self.what} is truncated at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def sized(self) -> bytes:
        return self.take(self.u16())

    def end(self) -> None:
        if self.pos != len(self.data):
            raise TpmStructureError(f"{self.what} has {len(self.data) - self.pos} trailing bytes")


@dataclass(frozen=True)
class Quote:
    """A parsed TPMS_ATTEST of type quote."""

    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock: int
    reset_count: int
    restart_count: int
    safe: bool
    firmware_version: int
    pcr_selection: tuple[tuple[int, tuple[int, ...]], ...]  # (hash alg, pcr indices)
    pcr_digest: bytes


def parse_attest(data: bytes) -> Quote:
    """Parse a TPMS_ATTEST holding a TPMS_QUOTE_INFO (TpmStructureError if it is not one)."""
    r = _Reader(data, "TPMS_ATTEST")
    magic, kind = r.u32(), r.u16()
    signer, extra = r.sized(), r.sized()
    clock, resets, restarts, safe = r.u64(), r.u32(), r.u32(), r.u8()
    firmware = r.u64()
    if kind != TPM_ST_ATTEST_QUOTE:
        raise TpmStructureError(f"TPMS_ATTEST type 0x{kind:04x} is not a quote (0x8018)")
    selection = []
    for _ in range(r.u32()):
        alg, size = r.u16(), r.u8()
        bitmap = r.take(size)
        pcrs = tuple(i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1)
        selection.append((alg, pcrs))
    digest = r.sized()
    r.end()
    return Quote(
        magic, kind, signer, extra, clock, resets, restarts, bool(safe), firmware,
        tuple(selection), digest,
    )  # fmt: skip


def parse_signature(data: bytes) -> bytes:
    """A TPMT_SIGNATURE (ECDSA with SHA-256) as a DER signature for ``cryptography``."""
    r = _Reader(data, "TPMT_SIGNATURE")
    alg, hash_alg = r.u16(), r.u16()
    if alg != TPM_ALG_ECDSA or hash_alg != TPM_ALG_SHA256:
        raise TpmStructureError(
            f"signature scheme 0x{alg:04x}/0x{hash_alg:04x} is not ECDSA-SHA256"
        )
    sig_r, sig_s = r.sized(), r.sized()
    r.end()
    return encode_dss_signature(int.from_bytes(sig_r, "big"), int.from_bytes(sig_s, "big"))


@dataclass(frozen=True)
class AkPublic:
    """A parsed TPMT_PUBLIC of an ECC attestation key."""

    attributes: int
    curve: int
    scheme: int
    x: int
    y: int
    name: bytes  # nameAlg || sha256(TPMT_PUBLIC): the AK's TPM name

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicNumbers(self.x, self.y, ec.SECP256R1()).public_key()


def parse_ak_public(data: bytes) -> AkPublic:
    """Parse an ECC P-256 TPMT_PUBLIC (TpmStructureError for any other key type)."""
    r = _Reader(data, "TPMT_PUBLIC")
    kind, name_alg, attributes = r.u16(), r.u16(), r.u32()
    r.sized()  # authPolicy
    if kind != TPM_ALG_ECC or name_alg != TPM_ALG_SHA256:
        raise TpmStructureError(f"AK is type 0x{kind:04x}/0x{name_alg:04x}, not ECC with SHA-256")
    if r.u16() != TPM_ALG_NULL:
        raise TpmStructureError("AK has a symmetric algorithm: it is a storage key, not a signer")
    scheme = r.u16()
    if scheme != TPM_ALG_NULL:
        r.u16()
    curve, kdf = r.u16(), r.u16()
    if kdf != TPM_ALG_NULL:
        r.u16()
    x, y = r.sized(), r.sized()
    r.end()
    if curve != TPM_ECC_NIST_P256:
        raise TpmStructureError(f"AK curve 0x{curve:04x} is not NIST P-256")
    name = struct.pack(">H", TPM_ALG_SHA256) + hashlib.sha256(data).digest()
    return AkPublic(
        attributes, curve, scheme, int.from_bytes(x, "big"), int.from_bytes(y, "big"), name
    )


def tpm_hardware_domain(pcr0: bytes) -> DomainId:
    """The hardware domain of a machine whose firmware measured to ``pcr0`` (sha256 bank)."""
    return domain_id(Dimension.HARDWARE, f"tpm-pcr0:{pcr0.hex()}")


def quote_data(unsigned_envelope: dict[str, Any]) -> bytes:
    """The quote's qualifying data: sha256 of the canonical envelope without ``quote``."""
    return hashlib.sha256(canonical_json(unsigned_envelope)).digest()


def pcr_digest(pcrs: dict[int, bytes]) -> bytes:
    """sha256 over the PCR values in ascending index order (the TPM's pcrDigest)."""
    return hashlib.sha256(b"".join(pcrs[i] for i in sorted(pcrs))).digest()


# --------------------------------------------------------------------------- AK certificates


def issue_ak_cert(
    issuer_cert: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    ak_public: bytes,
    ek_cert: x509.Certificate,
    subject: str,
    *,
    days: int = 365,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """An AK certificate binding ``ak_public`` (TPMT_PUBLIC) to an EK certificate. The issuer
    must have checked with TPM2_ActivateCredential that the AK is in the EK's TPM."""
    ak = parse_ak_public(ak_public)
    start = now or dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_cert.subject)
        .public_key(ak.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.UnrecognizedExtension(AK_PUBLIC_OID, ak_public), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(EK_CERT_OID, fingerprint(ek_cert)), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return ext.value if isinstance(ext, x509.UnrecognizedExtension) else None


# --------------------------------------------------------------------------- verification

CertificateLookup = Callable[[bytes], x509.Certificate | None]
#: A block's (hash, timestamp) by number, None if the chain has no such block.
BlockLookup = Callable[[int], tuple[bytes, int] | None]


@dataclass(frozen=True)
class TpmContext:
    """What a TPM envelope's checks need from the chain."""

    certificates: CertificateLookup
    manufacturer_cas: Container[bytes]  # pinned sha256 fingerprints of manufacturer root CAs
    block: BlockLookup
    issued_at: int  # the proof's issuedAt
    kind: str  # the proof's kind ("hardware", ...)
    domain_id: bytes  # the proof's domain id
    max_skew: int = 0  # how far block time may run ahead of the attestor's clock (policy)


def _hex32(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Fields:
    ak_cert: bytes
    ek_cert: bytes
    chain: list[bytes]
    pcrs: dict[int, bytes]
    nonce_block: int
    nonce_hash: bytes
    attest: bytes
    signature: bytes


def _fields(doc: dict[str, Any]) -> _Fields | str:
    tpm, nonce, quote = doc.get("tpm"), doc.get("nonce"), doc.get(QUOTE_FIELD)
    if not isinstance(tpm, dict) or not isinstance(nonce, dict) or not isinstance(quote, dict):
        return "tpm, nonce or quote missing"
    ak, ek = _hex32(tpm.get("akCert")), _hex32(tpm.get("ekCert"))
    chain_raw, pcrs_raw = tpm.get("caChain"), tpm.get("pcrs")
    if ak is None or ek is None or not isinstance(chain_raw, list) or not chain_raw:
        return "tpm.akCert, tpm.ekCert or tpm.caChain missing or malformed"
    chain = [_hex32(c) for c in chain_raw[:8]]
    if len(chain_raw) > 8 or any(c is None for c in chain):
        return "tpm.caChain holds something other than up to 8 sha256 hashes"
    if not isinstance(pcrs_raw, dict) or not pcrs_raw or len(pcrs_raw) > 24:
        return "tpm.pcrs missing"
    pcrs: dict[int, bytes] = {}
    for key, value in pcrs_raw.items():
        digest = _hex32(value)
        if not (isinstance(key, str) and key.isdigit() and int(key) < 24) or digest is None:
            return f"tpm.pcrs[{key!r}] is not a PCR index with a sha256 value"
        pcrs[int(key)] = digest
    block, block_hash = nonce.get("block"), _hex32(nonce.get("hash"))
    if not isinstance(block, int) or isinstance(block, bool) or block < 0 or block_hash is None:
        return "nonce.block or nonce.hash malformed"
    try:
        attest = bytes.fromhex(str(quote.get("attest")))
        signature = bytes.fromhex(str(quote.get("signature")))
    except ValueError:
        return "quote.attest or quote.signature is not hex"
    return _Fields(
        ak, ek, [c for c in chain if c], pcrs, block, block_hash, attest, signature
    )  # fmt: skip


def _check(cid: str, failure: str | None) -> CheckResult:
    return CheckResult(cid, failure is None, failure or "")


def _valid_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chain_failure(
    f: _Fields, ctx: TpmContext, at: dt.datetime
) -> tuple[str | None, x509.Certificate | None, x509.Certificate | None]:
    """(failure, EK certificate, issuing CA) of the EK-to-root chain."""
    ek = ctx.certificates(f.ek_cert)
    cas = [ctx.certificates(h) for h in f.chain]
    if ek is None:
        return f"EK certificate {f.ek_cert.hex()} not published", None, None
    missing = [h.hex() for h, c in zip(f.chain, cas, strict=True) if c is None]
    if missing:
        return f"CA certificate {missing[0]} not published", ek, None
    child = ek
    for ca in cas:
        assert ca is not None
        if not _issued(child, ca):
            return (
                f"{child.subject.rfc4514_string()} not issued by the next CA of caChain",
                ek,
                None,
            )
        if not _valid_at(ca, at):
            return f"CA {ca.subject.rfc4514_string()} not valid at observation", ek, None
        child = ca
    return None, ek, cas[0]


def _ak_failure(
    ak_cert: x509.Certificate | None,
    ek: x509.Certificate | None,
    issuing: x509.Certificate | None,
    at: dt.datetime,
) -> tuple[str | None, AkPublic | None]:
    if ak_cert is None:
        return "AK certificate not published", None
    if ek is None or issuing is None:
        return "no verified EK chain to certify the AK against", None
    if not _issued(ak_cert, issuing):
        return "AK certificate not issued by the EK's issuing CA", None
    if _extension(ak_cert, EK_CERT_OID) != fingerprint(ek):
        return "AK certificate names another EK certificate", None
    if not _valid_at(ak_cert, at):
        return f"AK certificate not valid at {at.isoformat()}", None
    raw = _extension(ak_cert, AK_PUBLIC_OID)
    if raw is None:
        return "AK certificate carries no TPMT_PUBLIC", None
    try:
        ak = parse_ak_public(raw)
    except TpmStructureError as exc:
        return str(exc), None
    if ak.attributes & AK_ATTRIBUTES != AK_ATTRIBUTES:
        return f"AK attributes 0x{ak.attributes:08x} lack fixedTPM/restricted/sign", None
    key = ak_cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.public_numbers() != (
        ak.public_key().public_numbers()
    ):
        return "AK certificate key is not the AK's TPMT_PUBLIC key", None
    return None, ak


def _signature_failure(f: _Fields, ak: AkPublic | None) -> str | None:
    """Whether the certified AK signed these exact TPMS_ATTEST bytes (checked on the raw bytes,
    before they are parsed)."""
    if ak is None:
        return "no certified AK to check the signature with"
    try:
        ak.public_key().verify(parse_signature(f.signature), f.attest, ec.ECDSA(hashes.SHA256()))
    except TpmStructureError as exc:
        return str(exc)
    except InvalidSignature:
        return "quote signature does not verify under the certified AK"
    return None


def _quote_checks(doc: dict[str, Any], f: _Fields, ak: AkPublic | None) -> list[CheckResult]:
    signature = _check("tpm.quote.signature", _signature_failure(f, ak))
    try:
        quote = parse_attest(f.attest)
    except TpmStructureError as exc:
        unparsed = f"quote unreadable: {exc}"
        return [
            CheckResult("tpm.quote.form", False, str(exc)),
            signature,
            CheckResult("tpm.quote.evidence", False, unparsed),
            CheckResult("tpm.quote.pcrs", False, unparsed),
        ]
    form = None
    if quote.magic != TPM_GENERATED_VALUE:
        form = "quote not generated by a TPM (magic)"
    elif ak is not None and quote.qualified_signer[:2] != ak.name[:2]:
        form = "qualifiedSigner uses another name algorithm than the AK"
    unsigned = {k: v for k, v in doc.items() if k != QUOTE_FIELD}
    try:
        bound = quote.extra_data == quote_data(unsigned)
    except EvidenceError:
        bound = False
    wanted = ((TPM_ALG_SHA256, tuple(sorted(f.pcrs))),)
    pcr_fail = None
    if quote.pcr_selection != wanted:
        pcr_fail = f"quote selects {quote.pcr_selection}, evidence declares {wanted}"
    elif quote.pcr_digest != pcr_digest(f.pcrs):
        pcr_fail = "quoted PCR digest does not match the declared PCR values"
    elif HARDWARE_PCR not in f.pcrs:
        pcr_fail = f"PCR {HARDWARE_PCR} not quoted"
    return [
        _check("tpm.quote.form", form),
        signature,
        _check("tpm.quote.evidence", None if bound else "quote does not cover this evidence"),
        _check("tpm.quote.pcrs", pcr_fail),
    ]


def _nonce_failure(f: _Fields, ctx: TpmContext) -> str | None:
    found = ctx.block(f.nonce_block)
    if found is None:
        return f"nonce block {f.nonce_block} not on the chain"
    block_hash, timestamp = found
    if block_hash != f.nonce_hash:
        return f"nonce is not block {f.nonce_block}'s hash"
    if timestamp > ctx.issued_at + ctx.max_skew:
        return f"nonce block time {timestamp} after issuedAt {ctx.issued_at} + {ctx.max_skew} s"
    if timestamp < ctx.issued_at - MAX_NONCE_AGE:
        return f"nonce block time {timestamp} older than issuedAt - {MAX_NONCE_AGE} s: stale"
    return None


def verify_tpm_envelope(doc: dict[str, Any], ctx: TpmContext) -> list[CheckResult]:
    """Every check of a TPM envelope (already parsed and checked canonical by the caller)."""
    f = _fields(doc)
    if isinstance(f, str):
        return [CheckResult("tpm.envelope", False, f)]
    observed = doc.get("observedAt")
    if not isinstance(observed, int) or isinstance(observed, bool) or observed < 0:
        return [CheckResult("tpm.envelope", False, "observedAt missing or not an integer")]
    try:
        at = dt.datetime.fromtimestamp(observed, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return [CheckResult("tpm.envelope", False, f"observedAt {observed} is out of range")]
    results = [CheckResult("tpm.envelope", True)]
    root = f.chain[-1]
    pinned = root in ctx.manufacturer_cas
    results.append(
        _check("tpm.ca.pinned", None if pinned else f"root CA {root.hex()} is not pinned")
    )
    chain_fail, ek, issuing = _chain_failure(f, ctx, at)
    results.append(_check("tpm.ek.chain", chain_fail))
    ak_fail, ak = _ak_failure(ctx.certificates(f.ak_cert), ek, issuing, at)
    results.append(_check("tpm.ak.certified", ak_fail))
    results += _quote_checks(doc, f, ak)
    results.append(_check("tpm.nonce.fresh", _nonce_failure(f, ctx)))
    if ctx.kind == "hardware":
        pcr0 = f.pcrs.get(HARDWARE_PCR)
        expected = tpm_hardware_domain(pcr0) if pcr0 is not None else None
        results.append(
            _check(
                "tpm.hardware_domain",
                None
                if expected == ctx.domain_id
                else "domain id is not the one PCR 0 (measured firmware) names",
            )
        )
    return results


def envelope_certificates(doc: dict[str, Any]) -> list[str]:
    """sha256 hex of every certificate a TPM envelope names (for publishing and display)."""
    tpm = doc.get("tpm")
    if not isinstance(tpm, dict):
        return []
    names = [tpm.get("akCert"), tpm.get("ekCert"), *(tpm.get("caChain") or [])]
    return [n for n in names if isinstance(n, str)]


__all__ = [
    "AK_PUBLIC_OID",
    "EK_CERT_OID",
    "IDENTITY_TPM",
    "MAX_NONCE_AGE",
    "QUOTED_PCRS",
    "TpmContext",
    "issue_ak_cert",
    "parse_ak_public",
    "parse_attest",
    "parse_signature",
    "pcr_digest",
    "quote_data",
    "sha256_hex",
    "to_der",
    "tpm_hardware_domain",
    "verify_tpm_envelope",
]
