"""The API's exceptions: raised by views, mapped to HTTP by the handlers in ``handlers.py``.

A chain that cannot answer is the core's ``ChainUnreachableError`` (HTTP 503), not an API error.
"""

from __future__ import annotations

from redundancy.errors import RedundancyError


class ApiError(RedundancyError):
    """Raised for any failure the API reports to a client (root of the API's branch)."""


class NotFoundError(ApiError, LookupError):
    """Raised when a well-formed id names nothing at the queried block (HTTP 404)."""

    def __init__(self, what: str, ref: str, detail: str = "") -> None:
        super().__init__(detail or f"{what} {ref} not found")
        self.what = what
        self.ref = ref


class FacilityNotFoundError(NotFoundError):
    """Raised when no facility with the given id or name is registered."""

    def __init__(self, ref: str) -> None:
        super().__init__("facility", ref)


class ValidatorNotFoundError(NotFoundError):
    """Raised when no validator with the given address is registered."""

    def __init__(self, ref: str) -> None:
        super().__init__("validator", ref)


class AttestationNotFoundError(NotFoundError):
    """Raised when a transaction holds no proof at the given index (or is no proof submission)."""

    def __init__(self, ref: str, detail: str) -> None:
        super().__init__("attestation", ref, detail)


class ChainAnswerError(ApiError):
    """Raised when the chain answered a view with a revert it should never give (HTTP 502)."""
