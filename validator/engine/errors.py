"""Exceptions of the validator (the root of its branch) and of its engine.

Bad *business* input (a bad tick, an unknown order, too little collateral) is
never an exception: the engine answers it with a rejection ``Result``. These
exceptions are for input that is not a message at all, for corrupt snapshots
and for callers that break the engine's contract (applying out of sequence).
"""

from __future__ import annotations

from redundancy.errors import RedundancyError


class ValidatorError(RedundancyError):
    """Raised when the validator cannot do what it was asked (root of the validator's branch)."""


class MessageError(ValidatorError, ValueError):
    """Raised when a log line or message is malformed: not JSON, unknown type, a
    missing or extra field, or a field of the wrong type."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"field {field!r}: {reason}" if field else reason)


class LogError(ValidatorError, ValueError):
    """Raised when a log file cannot be read or one of its lines is malformed;
    names the file and the 1-based line number."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class SnapshotError(ValidatorError, ValueError):
    """Raised when snapshot bytes cannot be restored: not a snapshot, an unknown
    version, inconsistent content, or not in canonical form."""


class SequenceError(ValidatorError):
    """Raised when an input is applied at a sequence number other than the next one."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"expected input at sequence {expected}, got {got}")


class EngineBuildError(ValidatorError, ImportError):
    """Raised when ``VALIDATOR_ENGINE`` asks for an implementation of the engine that cannot be
    loaded: an unknown choice, or a compiled build that is missing or older than its sources."""
