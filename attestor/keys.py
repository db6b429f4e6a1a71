"""The attestor's two keys: its Ethereum key (encrypted keystore) and its device identity (an
Ed25519 key with an X.509 certificate from the facility operator's CA).

Private key files are created mode 0600 and never overwritten; loading refuses files that group or
others may read. Keys are never printed or logged (``repr`` shows only public facts).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eth_account.signers.local import LocalAccount

from attestor.errors import DeviceIdentityError
from redundancy.devicecert import (
    device_name,
    fingerprint,
    issue_device_cert,
    make_ca,
    sha256_hex,
    to_der,
)
from redundancy.errors import KeystoreError
from redundancy.keystore import check_private_mode, load_account, read_passphrase, write_keystore

PASSWORD_ENV = "ATTESTOR_KEYSTORE_PASSWORD"
KEYSTORE = "attestor-key.json"
DEVICE_KEY = "device-key.pem"
DEVICE_CERT = "device-cert.pem"
CA_KEY = "ca-key.pem"
CA_CERT = "ca-cert.pem"


@dataclass(frozen=True)
class DeviceIdentity:
    """The device key that signs evidence, its certificate and the CA that issued it."""

    key: Ed25519PrivateKey = field(repr=False)
    cert: x509.Certificate
    ca_cert: x509.Certificate

    @cached_property
    def cert_der(self) -> bytes:
        return to_der(self.cert)

    @cached_property
    def ca_der(self) -> bytes:
        return to_der(self.ca_cert)

    @cached_property
    def cert_sha256(self) -> str:
        """sha256 hex of the device certificate DER: the envelope's ``deviceCert``."""
        return sha256_hex(self.cert_der)

    @cached_property
    def ca_fingerprint(self) -> bytes:
        """sha256 of the CA certificate DER: what the registry pins for the facility."""
        return fingerprint(self.ca_cert)


def passphrase(password_file: Path | None, from_env: str | None) -> str:
    """The keystore passphrase: the file's first line if a file is named (refused if others
    may read it), else the environment value ``ATTESTOR_KEYSTORE_PASSWORD`` (as loaded into the
    settings)."""
    if password_file is not None:
        return read_passphrase(password_file, PASSWORD_ENV)
    if from_env is None:
        raise KeystoreError(f"no passphrase: set keys.password_file or {PASSWORD_ENV}")
    return from_env


def load_private_key(path: Path, secret: str, what: str) -> Ed25519PrivateKey:
    """Load an encrypted Ed25519 PEM key, refusing one that others may read."""
    try:
        check_private_mode(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"{what} {path} not found") from None
    except OSError as exc:
        raise KeystoreError(f"{what} {path} is unreadable: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, secret.encode())
    except (ValueError, TypeError):
        raise KeystoreError(f"wrong passphrase for {what} {path} (or not a PEM key)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeystoreError(f"{what} {path} is not an Ed25519 key")
    return key


def load_certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise DeviceIdentityError(f"{what} {path} not found") from None
    except (OSError, ValueError) as exc:
        raise DeviceIdentityError(f"{what} {path} is not a PEM certificate: {exc}") from None


def load_device_identity(
    key_path: Path, cert_path: Path, ca_path: Path, secret: str
) -> DeviceIdentity:
    """Load the device key and certificates and check they belong together."""
    key = load_private_key(key_path, secret, "device key")
    cert = load_certificate(cert_path, "device certificate")
    ca = load_certificate(ca_path, "CA certificate")
    public = cert.public_key()
    if not isinstance(public, Ed25519PublicKey) or public.public_bytes_raw() != (
        key.public_key().public_bytes_raw()
    ):
        raise DeviceIdentityError(
            f"device certificate {cert_path} is not for device key {key_path}"
        )
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        raise DeviceIdentityError(
            f"device certificate {cert_path} is not issued by CA {ca_path}"
        ) from None
    now = dt.datetime.now(dt.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= now <= end:
        raise DeviceIdentityError(
            f"device certificate {cert_path} is valid only from {start:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}: evidence signed now would not verify; issue a new one with the "
            "facility CA"
        )
    return DeviceIdentity(key, cert, ca)


# ------------------------------------------------------------------------- writing


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_private_key(path: Path, key: Ed25519PrivateKey, secret: str) -> None:
    """Write an Ed25519 key as passphrase-encrypted PKCS#8 PEM, mode 0600."""
    if not secret:
        raise KeystoreError("an empty passphrase cannot protect a key")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.encode()),
    )
    _write_private(path, pem)


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class NewKeys:
    """What ``keygen`` made: the attestor address and the device public key."""

    address: str
    device_public_key: str


def keygen(directory: Path, secret: str, kdf_iterations: int | None = None) -> NewKeys:
    """Create the attestor's Ethereum keystore and device key in ``directory`` (never
    overwriting). ``kdf_iterations`` lowers the scrypt cost for throwaway development keys."""
    if not secret:
        raise KeystoreError("an empty passphrase cannot protect a key")
    directory.mkdir(parents=True, exist_ok=True)
    for name in (KEYSTORE, DEVICE_KEY):
        if (directory / name).exists():
            raise KeystoreError(f"{directory / name} already exists; refusing to overwrite it")
    address = write_keystore(
        directory / KEYSTORE, os.urandom(32), secret, iterations=kdf_iterations
    )
    device = Ed25519PrivateKey.generate()
    write_private_key(directory / DEVICE_KEY, device, secret)
    return NewKeys(address, device.public_key().public_bytes_raw().hex())


@dataclass(frozen=True)
class SiteKeys:
    """What ``init`` made: everything the registry owner needs to register the facility."""

    facility: str
    address: str
    ca_fingerprint: str
    device_cert_sha256: str
    directory: Path


def init_site(
    facility: str,
    directory: Path,
    secret: str,
    *,
    ca_cert_path: Path | None = None,
    ca_key_path: Path | None = None,
    kdf_iterations: int | None = None,
    device_days: int = 365,
) -> SiteKeys:
    """Set up a new site's keys: keygen (if not done), a facility CA (unless the operator's is
    given), and a device certificate issued by that CA."""
    keystore = directory / KEYSTORE
    if not keystore.exists():
        keygen(directory, secret, kdf_iterations)
    account: LocalAccount = load_account(keystore, secret)
    device = load_private_key(directory / DEVICE_KEY, secret, "device key")
    if ca_cert_path is not None and ca_key_path is not None:
        ca_cert = load_certificate(ca_cert_path, "CA certificate")
        ca_key = load_private_key(ca_key_path, secret, "CA key")
        write_certificate(directory / CA_CERT, ca_cert)
    elif ca_cert_path is None and ca_key_path is None:
        ca_key = Ed25519PrivateKey.generate()
        ca_cert = make_ca(facility, ca_key)
        write_private_key(directory / CA_KEY, ca_key, secret)
        write_certificate(directory / CA_CERT, ca_cert)
    else:
        raise DeviceIdentityError("give both --ca-cert and --ca-key, or neither")
    device_cert = issue_device_cert(
        ca_cert, ca_key, device.public_key(), device_name(facility), days=device_days
    )
    write_certificate(directory / DEVICE_CERT, device_cert)
    return SiteKeys(
        facility=facility,
        address=account.address,
        ca_fingerprint=fingerprint(ca_cert).hex(),
        device_cert_sha256=sha256_hex(to_der(device_cert)),
        directory=directory,
    )
