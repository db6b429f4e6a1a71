"""Site keys: init writes private files 0600 and a device certificate under the CA; loading
refuses a wrong passphrase, a readable key, and certificates that do not fit together."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attestor.cli import main
from attestor.errors import DeviceIdentityError
from attestor.keys import (
    CA_CERT,
    CA_KEY,
    DEVICE_CERT,
    DEVICE_KEY,
    KEYSTORE,
    init_site,
    keygen,
    load_device_identity,
    load_private_key,
    passphrase,
    write_certificate,
)
from redundancy.devicecert import issue_device_cert, make_ca
from redundancy.errors import KeystoreError
from redundancy.keystore import load_account

SECRET = "s3cret passphrase"


def _identity(d: Path, secret: str = SECRET):  # type: ignore[no-untyped-def]
    return load_device_identity(d / DEVICE_KEY, d / DEVICE_CERT, d / CA_CERT, secret)


def test_init_creates_private_files_0600_and_a_chain_that_verifies(tmp_path: Path) -> None:
    site = init_site("fra1", tmp_path, SECRET, kdf_iterations=16)
    for name in (KEYSTORE, DEVICE_KEY, CA_KEY):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    identity = _identity(tmp_path)
    assert identity.ca_fingerprint.hex() == site.ca_fingerprint
    assert identity.cert_sha256 == site.device_cert_sha256
    assert load_account(tmp_path / KEYSTORE, SECRET).address == site.address
    assert "key=" not in repr(identity)


def test_init_with_the_operators_ca(tmp_path: Path) -> None:
    operator = tmp_path / "operator"
    init_site("fra1", operator, SECRET, kdf_iterations=16)
    site = init_site(
        "fra1",
        tmp_path / "site",
        SECRET,
        ca_cert_path=operator / CA_CERT,
        ca_key_path=operator / CA_KEY,
        kdf_iterations=16,
    )
    assert not (tmp_path / "site" / CA_KEY).exists()
    assert site.ca_fingerprint == _identity(operator).ca_fingerprint.hex()
    with pytest.raises(DeviceIdentityError, match="both"):
        init_site("x", tmp_path / "x", SECRET, ca_cert_path=operator / CA_CERT)


def test_wrong_passphrase_and_wide_modes_are_refused(tmp_path: Path) -> None:
    init_site("fra1", tmp_path, SECRET, kdf_iterations=16)
    with pytest.raises(KeystoreError, match="wrong passphrase for device key"):
        _identity(tmp_path, "nope")
    (tmp_path / DEVICE_KEY).chmod(0o640)
    with pytest.raises(KeystoreError, match="mode 0640"):
        _identity(tmp_path)


def test_certificate_for_another_key_or_ca_is_refused(tmp_path: Path) -> None:
    init_site("fra1", tmp_path, SECRET, kdf_iterations=16)
    other_ca_key = Ed25519PrivateKey.generate()
    other_ca = make_ca("elsewhere", other_ca_key)
    stranger = issue_device_cert(
        other_ca, other_ca_key, Ed25519PrivateKey.generate().public_key(), "x"
    )
    original = (tmp_path / DEVICE_CERT).read_bytes()
    (tmp_path / DEVICE_CERT).unlink()
    write_certificate(tmp_path / DEVICE_CERT, stranger)
    with pytest.raises(DeviceIdentityError, match="is not for device key"):
        _identity(tmp_path)
    (tmp_path / DEVICE_CERT).write_bytes(original)
    write_certificate(tmp_path / CA_CERT, other_ca)
    with pytest.raises(DeviceIdentityError, match="is not issued by CA"):
        _identity(tmp_path)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    keygen(tmp_path, SECRET, 16)
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        keygen(tmp_path, SECRET, 16)
    with pytest.raises(KeystoreError, match="empty passphrase"):
        keygen(tmp_path / "b", "", 16)


def test_passphrase_from_file_or_environment(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from file\nignored\n")
    pw.chmod(0o600)
    assert passphrase(pw, "from env") == "from file"
    assert passphrase(None, "from env") == "from env"
    with pytest.raises(KeystoreError, match="ATTESTOR_KEYSTORE_PASSWORD"):
        passphrase(None, None)


def test_cli_init_and_keygen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    pw.chmod(0o600)
    site = tmp_path / "fra1"
    args = ["--dir", str(site), "--password-file", str(pw), "--kdf-iterations", "16"]
    assert main(["init", "--facility", "fra1", "--json", *args]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["attestor"] == load_account(site / KEYSTORE, SECRET).address
    assert facts["caFingerprint"] == "0x" + _identity(site).ca_fingerprint.hex()
    assert set(facts) == {
        "facility",
        "facilityId",
        "attestor",
        "caFingerprint",
        "deviceCert",
        "dir",
    }
    assert main(["keygen", *args]) == 3  # refuses to overwrite: one line, exit 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite" in err[0]
    fresh = ["--dir", str(tmp_path / "k"), "--password-file", str(pw), "--kdf-iterations", "16"]
    assert main(["keygen", *fresh]) == 0
    out = capsys.readouterr().out
    assert "attestor address" in out and SECRET not in out


def test_a_passphrase_file_others_may_read_is_refused(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    pw.chmod(0o644)
    with pytest.raises(KeystoreError, match=r"passphrase file .* has mode 0644"):
        passphrase(pw, None)
    with pytest.raises(KeystoreError, match="cannot read passphrase file"):
        passphrase(tmp_path / "missing", None)


def test_an_expired_device_certificate_is_refused(tmp_path: Path) -> None:
    init_site("fra1", tmp_path, SECRET, kdf_iterations=16)
    ca_key = load_private_key(tmp_path / CA_KEY, SECRET, "CA key")
    ca = x509.load_pem_x509_certificate((tmp_path / CA_CERT).read_bytes())
    device = load_private_key(tmp_path / DEVICE_KEY, SECRET, "device key")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = issue_device_cert(ca, ca_key, device.public_key(), "fra1", days=30, now=long_ago)
    (tmp_path / DEVICE_CERT).write_bytes(old.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(DeviceIdentityError, match="evidence signed now would not verify"):
        _identity(tmp_path)
