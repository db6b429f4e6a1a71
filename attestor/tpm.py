"""The ``tpm`` device-identity backend: evidence envelopes quoted by a TPM 2.0.

The attestation key (AK) lives in the TPM at a persistent handle, created under the endorsement
key (EK) and certified by the TPM's manufacturer (``redundancy.tpmquote`` explains the chain).
For every envelope the attestor reads the quoted PCRs, adds them, a fresh nonce (a recent block's
number and hash) and the certificates' hashes, and asks the TPM to quote those PCRs with
``sha256(canonical envelope)`` as qualifying data. tpm2-tools do the talking (TCTI given in the
settings, e.g. ``swtpm:host=127.0.0.1,port=2321``); transient objects and sessions are flushed
after every command because there is no resource manager.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509

from attestor.errors import DeviceIdentityError
from redundancy.devicecert import sha256_hex, to_der
from redundancy.evidence import canonical_json
from redundancy.tpmquote import (
    HARDWARE_PCR,
    IDENTITY_TPM,
    QUOTE_FIELD,
    QUOTED_PCRS,
    parse_attest,
    pcr_digest,
    quote_data,
    tpm_hardware_domain,
)

#: (block number, block hash) of a recent block: the quote's nonce.
NonceSource = Callable[[], tuple[int, bytes]]


def _run(tcti: str, *args: str, cwd: Path) -> None:
    env = {**os.environ, "TPM2TOOLS_TCTI": tcti}
    try:
        done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceIdentityError(f"{args[0]} could not run: {exc}") from None
    finally:
        for kind in ("-t", "-s"):
            subprocess.run(["tpm2_flushcontext", kind], env=env, capture_output=True, timeout=30)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise DeviceIdentityError(f"{args[0]} failed: {lines[-1] if lines else done.returncode}")


def load_pem_chain(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        raise DeviceIdentityError(f"TPM certificate file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise DeviceIdentityError(f"{path} is not PEM certificates: {exc}") from None
    return certs


@dataclass
class TpmIdentity:
    """A TPM that quotes envelopes with its certified AK."""

    tcti: str
    ak_handle: str
    ak_cert: x509.Certificate
    ek_cert: x509.Certificate
    ca_chain: list[x509.Certificate]  # issuing CA first, manufacturer root last
    nonce: NonceSource = field(repr=False)

    @cached_property
    def certificates_der(self) -> list[bytes]:
        """Every certificate a verifier needs, to publish on-chain (roots first)."""
        return [to_der(c) for c in (*reversed(self.ca_chain), self.ek_cert, self.ak_cert)]

    @cached_property
    def ak_certificate_sha256(self) -> bytes:
        """sha256 of the AK certificate (DER): what the facility binds on-chain."""
        return hashlib.sha256(to_der(self.ak_cert)).digest()

    def _tpm_facts(self) -> dict[str, Any]:
        return {
            "akCert": sha256_hex(to_der(self.ak_cert)),
            "ekCert": sha256_hex(to_der(self.ek_cert)),
            "caChain": [sha256_hex(to_der(c)) for c in self.ca_chain],
        }

    def read_pcrs(self, work: Path) -> dict[int, bytes]:
        pcrs = {}
        for index in QUOTED_PCRS:
            _run(self.tcti, "tpm2_pcrread", f"sha256:{index}", "-o", "pcr.bin", cwd=work)
            pcrs[index] = (work / "pcr.bin").read_bytes()
        return pcrs

    def hardware_domain(self) -> bytes:
        """The hardware domain PCR 0 (the measured firmware) names."""
        with tempfile.TemporaryDirectory(prefix="attestor-tpm-") as tmp:
            return tpm_hardware_domain(self.read_pcrs(Path(tmp))[HARDWARE_PCR])

    def quote_envelope(self, document: dict[str, Any]) -> bytes:
        """The envelope with TPM facts, a fresh nonce and the TPM's quote; canonical JSON."""
        block, block_hash = self.nonce()
        with tempfile.TemporaryDirectory(prefix="attestor-tpm-") as tmp:
            work = Path(tmp)
            for _attempt in range(3):  # a PCR extended between read and quote: read again
                pcrs = self.read_pcrs(work)
                pcr_hex = {str(i): v.hex() for i, v in pcrs.items()}
                unsigned = {
                    **document,
                    "identity": IDENTITY_TPM,
                    "nonce": {"block": block, "hash": block_hash.hex()},
                    "tpm": {**self._tpm_facts(), "pcrs": pcr_hex},
                }
                unsigned.pop(QUOTE_FIELD, None)
                selection = "sha256:" + ",".join(str(i) for i in sorted(pcrs))
                _run(
                    self.tcti, "tpm2_quote", "-c", self.ak_handle, "-l", selection,
                    "-q", quote_data(unsigned).hex(), "-g", "sha256",
                    "-m", "attest.bin", "-s", "sig.bin", cwd=work,
                )  # fmt: skip
                attest = (work / "attest.bin").read_bytes()
                if parse_attest(attest).pcr_digest == pcr_digest(pcrs):
                    signature = (work / "sig.bin").read_bytes()
                    quote = {"attest": attest.hex(), "signature": signature.hex()}
                    return canonical_json({**unsigned, QUOTE_FIELD: quote})
        raise DeviceIdentityError("PCRs kept changing while quoting; the platform is unstable")


def load_tpm_identity(
    tcti: str, ak_handle: str, ak_cert: Path, ek_cert: Path, ca_chain: Path, nonce: NonceSource
) -> TpmIdentity:
    """Load the TPM's certificates and check the chain belongs together (the verifier checks
    it again from chain data)."""
    ak = load_pem_chain(ak_cert)[0]
    ek = load_pem_chain(ek_cert)[0]
    chain = load_pem_chain(ca_chain)
    if not chain:
        raise DeviceIdentityError(f"{ca_chain} holds no certificates")
    try:
        ak.verify_directly_issued_by(chain[0])
        ek.verify_directly_issued_by(chain[0])
    except Exception:
        raise DeviceIdentityError(
            f"AK certificate {ak_cert} or EK certificate {ek_cert} is not issued by the first "
            f"CA of {ca_chain}"
        ) from None
    return TpmIdentity(tcti, ak_handle, ak, ek, chain, nonce)
