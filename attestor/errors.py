"""The attestor's exception branch, under the project's root ``RedundancyError``."""

from __future__ import annotations

from redundancy.errors import RedundancyError


class AttestorError(RedundancyError):
    """Raised for any failure the attestor itself detects (root of the attestor's branch)."""


class DeviceIdentityError(AttestorError):
    """Raised when the device key or certificates cannot be loaded or do not fit together, or
    when the TPM backend cannot quote (tpm2-tools missing or failing, no nonce block)."""


class ProbeError(AttestorError):
    """Raised when a probe cannot establish a fact it must report (unreadable, unconfigured)."""

    def __init__(self, probe: str, reason: str) -> None:
        super().__init__(f"{probe} probe: {reason}")
        self.probe = probe
        self.reason = reason


class OutboxError(AttestorError):
    """Raised when the outbox database belongs to another attestor key or cannot be used."""


class OutboxUnwritableError(OutboxError):
    """Raised when the outbox cannot store a write (disk full, read-only file system, I/O
    error): the transaction is rolled back, so nothing was stored and no sequence was used; a
    proof signed for it is discarded before anything else sees it."""


class RegistrationError(AttestorError):
    """Raised when the chain says this attestor may not publish for its facility as configured:
    not registered, another attestor key, another CA pinned, or a policy the settings break."""


class LatencyError(AttestorError):
    """Raised when a peer's latency response is malformed, for another nonce, or badly signed."""
