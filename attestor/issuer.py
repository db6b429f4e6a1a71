"""Observations become proofs: device-signed evidence envelope, EIP-712 signature with the next
sequence, stored in the outbox, all in one step.

The envelope (``redundancy.devicecert.sign_envelope``) is::

    {"v": 2, "kind": "power", "facility": "fra1", "observedAt": 1795000000, "body": {...},
     "deviceCert": "<sha256 of the device certificate DER>", "deviceSignature": "<Ed25519>"}

and its keccak256 is the proof's evidenceHash. ``v`` is the evidence format: 2 since health
bodies carry ``degraded`` (and ``upsStatus``); in version 1 they did not, and a reader finds no
``degraded`` in them (unknown, not "healthy").
With the ``tpm`` identity backend
(``attestor.tpm``) the envelope is quoted by the TPM instead (``redundancy.tpmquote``), and a
hardware proof's domain is the one PCR 0 (the measured firmware) names, whatever the
configuration says about vendor, model and firmware.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from attestor.keys import DeviceIdentity
from attestor.outbox import Outbox
from attestor.probes import Observation
from attestor.tpm import TpmIdentity
from redundancy.devicecert import sign_envelope
from redundancy.domains import Kind
from redundancy.eip712 import Signer
from redundancy.evidence import parse_document
from redundancy.proofs import SignedProof, make_proof
from redundancy.tpmquote import HARDWARE_PCR, tpm_hardware_domain

#: The evidence format (the envelope's ``v``); see the module docstring.
EVIDENCE_VERSION = 2


class Issuer:
    """Signs observations into the outbox for one facility."""

    def __init__(
        self,
        facility: str,
        facility_id: bytes,
        identity: DeviceIdentity,
        signer: Signer,
        domain_separator: bytes,
        outbox: Outbox,
        clock: Callable[[], float] = time.time,
        tpm: TpmIdentity | None = None,
    ) -> None:
        self.facility = facility
        self.facility_id = facility_id
        self.identity = identity
        self.signer = signer
        self.domain_separator = domain_separator
        self.outbox = outbox
        self.clock = clock
        self.tpm = tpm

    def envelope(self, obs: Observation) -> bytes:
        """The device-signed canonical evidence document of an observation."""
        document = {
            "v": EVIDENCE_VERSION,
            "kind": obs.kind.name.lower(),
            "facility": self.facility,
            "observedAt": obs.observed_at,
            "body": obs.body,
        }
        if self.tpm is not None:
            return self.tpm.quote_envelope(document)
        return sign_envelope(document, self.identity.key, self.identity.cert_sha256)

    def _domain(self, obs: Observation, evidence: bytes) -> bytes:
        """The proof's domain id: with a TPM, a hardware proof's is the quoted PCR 0's."""
        if self.tpm is None or obs.kind != Kind.HARDWARE:
            return obs.domain_id
        pcr0 = parse_document(evidence)["tpm"]["pcrs"][str(HARDWARE_PCR)]
        return tpm_hardware_domain(bytes.fromhex(pcr0))

    def _sign(
        self, obs: Observation, evidence: bytes, issued_at: int, lifetime: int, sequence: int
    ) -> SignedProof:
        return make_proof(
            self.signer,
            self.domain_separator,
            facility_id=self.facility_id,
            kind=obs.kind,
            evidence=evidence,
            issued_at=issued_at,
            expires_at=issued_at + lifetime,
            sequence=sequence,
            subject=obs.subject,
            domain_id=self._domain(obs, evidence),
            secondary_domain_id=obs.secondary_domain_id,
            latitude_e6=obs.latitude_e6,
            longitude_e6=obs.longitude_e6,
        )

    def issue(self, items: Sequence[tuple[Observation, int]]) -> list[SignedProof]:
        """Sign (observation, lifetime seconds) pairs into the outbox in one transaction."""
        issued_at = int(self.clock())
        builders = [
            partial(self._sign, obs, self.envelope(obs), issued_at, lifetime)
            for obs, lifetime in items
        ]
        return self.outbox.append(builders)
