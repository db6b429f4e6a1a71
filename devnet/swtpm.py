"""Software TPMs for the devnet and the tests: a manufacturer, and a swtpm per site.

``Manufacturer`` is a local CA made by ``swtpm_localca`` (a root CA and an issuing CA) that signs
every site's EK certificate when ``swtpm_setup --create-ek-cert --create-platform-cert``
manufactures its TPM, and that issues each TPM's AK certificate after checking, with
``TPM2_MakeCredential``/``TPM2_ActivateCredential``, that the AK lives in the TPM holding that EK
(the TCG IAK model). ``SoftTpm`` is one running ``swtpm socket --tpm2`` on loopback ports, whose
PCR 0 is extended with a simulated firmware measurement (sha256 of a firmware image name) the way
a platform's CRTM measures its firmware before running it.

tpm2-tools talk to it over the ``swtpm`` TCTI; every command is followed by flushing transient
objects and sessions (there is no resource manager).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from devnet.ports import free_port
from redundancy.devicecert import fingerprint, to_der
from redundancy.errors import RedundancyError
from redundancy.tpmquote import issue_ak_cert, parse_ak_public

EK_HANDLE = "0x81010001"  # RSA 2048 EK made persistent by swtpm_setup
EK_CERT_NV = "0x1c00002"
AK_HANDLE = "0x81010002"
TOOLS = ("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak")


class SoftTpmError(RedundancyError):
    """Raised when swtpm or tpm2-tools are missing or a TPM command fails (names the command)."""


def check_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise SoftTpmError(
            f"missing {', '.join(missing)}: install the Debian packages swtpm swtpm-tools "
            "tpm2-tools (scripts/bootstrap.sh does)"
        )


def tpm2(tcti: str, *args: str, cwd: Path | None = None) -> bytes:
    """Run one tpm2-tools command against a TCTI, then flush transient objects and sessions."""
    env = {**os.environ, "TPM2TOOLS_TCTI": tcti}
    try:
        done = subprocess.run(
            ["tpm2_" + args[0], *args[1:]], env=env, cwd=cwd, capture_output=True, timeout=30
        )
    finally:
        for kind in ("-t", "-s"):
            subprocess.run(["tpm2_flushcontext", kind], env=env, capture_output=True, timeout=30)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise SoftTpmError(f"tpm2_{args[0]} failed: {err[-1] if err else done.returncode}")
    return done.stdout


@dataclass
class Manufacturer:
    """A TPM manufacturer's CA (swtpm_localca's state directory) shared by every site's TPM."""

    directory: Path

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "localca.conf").write_text(
            f"statedir = {self.directory}\n"
            f"signingkey = {self.directory}/signkey.pem\n"
            f"issuercert = {self.directory}/issuercert.pem\n"
            f"certserial = {self.directory}/certserial\n"
        )
        (self.directory / "swtpm_setup.conf").write_text(
            "create_certs_tool = /usr/bin/swtpm_localca\n"
            f"create_certs_tool_config = {self.directory}/localca.conf\n"
            "create_certs_tool_options = /etc/swtpm-localca.options\n"
            "active_pcr_banks = sha256\n"
        )

    @property
    def setup_config(self) -> Path:
        return self.directory / "swtpm_setup.conf"

    def _cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / name).read_bytes())

    @property
    def root_cert(self) -> x509.Certificate:
        return self._cert("swtpm-localca-rootca-cert.pem")

    @property
    def issuer_cert(self) -> x509.Certificate:
        return self._cert("issuercert.pem")

    @property
    def root_fingerprint(self) -> bytes:
        """What verifiers pin: sha256 of the root CA certificate DER."""
        return fingerprint(self.root_cert)

    def issuer_key(self) -> CertificateIssuerPrivateKeyTypes:
        key = serialization.load_pem_private_key(
            (self.directory / "signkey.pem").read_bytes(), None
        )
        return key  # type: ignore[return-value]

    def certify_ak(self, tpm: SoftTpm) -> x509.Certificate:
        """Issue the TPM's AK certificate after proving the AK is in the TPM of its EK
        (a secret sealed to the EK and the AK's name comes back only from that TPM)."""
        work = tpm.directory
        ek_cert = tpm.ek_cert()
        ak_public = tpm.ak_public()
        parse_ak_public(ak_public)  # refuses a key that is not an ECC restricted signer
        name = tpm.ak_name()
        secret = os.urandom(32)
        (work / "secret.bin").write_bytes(secret)
        (work / "ak.name").write_bytes(name)
        tpm2(tpm.tcti, "readpublic", "-c", EK_HANDLE, "-o", "ek.pub", cwd=work)
        tpm2(
            "none", "makecredential", "-T", "none", "-u", "ek.pub", "-s", "secret.bin",
            "-n", name.hex(), "-o", "cred.bin", cwd=work,
        )  # fmt: skip
        env_cmds = (  # one shell: the policy session must live across the three commands
            "tpm2_startauthsession --policy-session -S session.ctx && "
            "tpm2_policysecret -S session.ctx -c e && tpm2_activatecredential -c "
            f"{AK_HANDLE} -C {EK_HANDLE} -i cred.bin -o back.bin -P session:session.ctx"
        )
        env = {**os.environ, "TPM2TOOLS_TCTI": tpm.tcti}
        done = subprocess.run(
            ["sh", "-c", env_cmds], cwd=work, env=env, capture_output=True, timeout=30
        )
        tpm2(tpm.tcti, "getcap", "handles-transient")  # flushes what the shell left
        if done.returncode != 0 or (work / "back.bin").read_bytes() != secret:
            raise SoftTpmError(
                f"credential activation failed: {done.stderr.decode(errors='replace')}"
            )
        for leftover in ("secret.bin", "back.bin", "cred.bin", "session.ctx"):
            (work / leftover).unlink(missing_ok=True)
        return issue_ak_cert(
            self.issuer_cert, self.issuer_key(), ak_public, ek_cert, f"{tpm.site} AK"
        )


def firmware_measurement(image: str) -> bytes:
    """The simulated measurement of a firmware image: sha256 of its name."""
    return hashlib.sha256(image.encode()).digest()


@dataclass
class SoftTpm:
    """One running swtpm (TPM 2.0) with a manufacturer-certified EK and AK."""

    site: str
    directory: Path
    port: int
    ctrl_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def ek_cert(self) -> x509.Certificate:
        tpm2(self.tcti, "nvread", EK_CERT_NV, "-o", "ek.der", cwd=self.directory)
        return x509.load_der_x509_certificate((self.directory / "ek.der").read_bytes())

    def ak_public(self) -> bytes:
        tpm2(
            self.tcti, "readpublic", "-c", AK_HANDLE, "-f", "tpmt", "-o", "ak.tpmt",
            cwd=self.directory,
        )  # fmt: skip
        return (self.directory / "ak.tpmt").read_bytes()

    def ak_name(self) -> bytes:
        return parse_ak_public(self.ak_public()).name

    def pcr(self, index: int) -> bytes:
        out = tpm2(self.tcti, "pcrread", f"sha256:{index}", "-o", "pcr.bin", cwd=self.directory)
        del out
        return (self.directory / "pcr.bin").read_bytes()

    def extend(self, index: int, digest: bytes) -> None:
        tpm2(self.tcti, "pcrextend", f"{index}:sha256={digest.hex()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _port_pair() -> int:
    """A free loopback port whose successor is free too."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise SoftTpmError("no two adjacent free loopback ports for swtpm")


def _wait_listening(tpm: SoftTpm, deadline: float) -> None:
    while True:
        try:
            tpm2(tpm.tcti, "getcap", "properties-fixed")
            return
        except SoftTpmError:
            if time.monotonic() > deadline or (tpm.process and tpm.process.poll() is not None):
                raise SoftTpmError(
                    f"swtpm for {tpm.site} did not answer on port {tpm.port}"
                ) from None
            time.sleep(0.1)


@dataclass
class ProvisionedTpm:
    """A started TPM with what its attestor needs: the TCTI, AK handle, and certificates."""

    tpm: SoftTpm
    ak_cert: x509.Certificate
    ek_cert: x509.Certificate
    ca_chain: list[x509.Certificate]  # issuing CA first, root last

    def write(self, directory: Path) -> dict[str, Path]:
        """Write the certificates as PEM files for the attestor; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "ak_cert": directory / "tpm-ak-cert.pem",
            "ek_cert": directory / "tpm-ek-cert.pem",
            "ca_chain": directory / "tpm-ca-chain.pem",
        }
        pem = serialization.Encoding.PEM
        paths["ak_cert"].write_bytes(self.ak_cert.public_bytes(pem))
        paths["ek_cert"].write_bytes(self.ek_cert.public_bytes(pem))
        paths["ca_chain"].write_bytes(b"".join(c.public_bytes(pem) for c in self.ca_chain))
        return paths

    def certificates_der(self) -> list[bytes]:
        return [to_der(c) for c in (*self.ca_chain, self.ek_cert, self.ak_cert)]


def start_tpm(
    site: str,
    manufacturer: Manufacturer,
    firmware_image: str,
    *,
    directory: Path | None = None,
    log: Path | None = None,
) -> ProvisionedTpm:
    """Manufacture a TPM for ``site`` (EK + platform certificates from the manufacturer),
    start swtpm on free loopback ports, measure the firmware image into PCR 0, create the AK
    under the EK (persistent at ``AK_HANDLE``) and have the manufacturer certify it."""
    check_tools()
    work = directory or Path(tempfile.mkdtemp(prefix=f"swtpm-{site}-"))
    state = work / "state"
    state.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "swtpm_setup", "--tpm2", "--tpm-state", str(state), "--create-ek-cert",
            "--create-platform-cert", "--overwrite", "--config", str(manufacturer.setup_config),
        ],
        capture_output=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SoftTpmError(f"swtpm_setup for {site} failed: {done.stdout.decode()[-400:]}")
    port = _port_pair()
    ctrl = port + 1  # the swtpm TCTI finds the control channel at port + 1
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [
            "swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
            "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
            "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
            "--flags", "not-need-init,startup-clear",
        ],
        stdout=out, stderr=out,
    )  # fmt: skip
    tpm = SoftTpm(site, work, port, ctrl, process)
    try:
        _wait_listening(tpm, time.monotonic() + 20)
        tpm.extend(0, firmware_measurement(firmware_image))
        tpm2(
            tpm.tcti, "createak", "-C", EK_HANDLE, "-c", "ak.ctx", "-G", "ecc", "-g", "sha256",
            "-s", "ecdsa", cwd=work,
        )  # fmt: skip
        tpm2(tpm.tcti, "evictcontrol", "-c", "ak.ctx", AK_HANDLE, cwd=work)
        ak_cert = manufacturer.certify_ak(tpm)
        return ProvisionedTpm(
            tpm, ak_cert, tpm.ek_cert(), [manufacturer.issuer_cert, manufacturer.root_cert]
        )
    except BaseException:
        tpm.stop()
        raise
