"""Exceptions of the distributed node: its etcd input log."""

from __future__ import annotations

from validator.engine.errors import ValidatorError


class EtcdError(ValidatorError):
    """Raised when etcd refuses a request or answers it with an error."""


class EtcdUnavailableError(EtcdError):
    """Raised when no etcd member answers in time: members down, paused or cut off, or the
    cluster has no quorum. ``maybe_applied`` is False only when no attempt reached a member (every
    connection was refused), so a write certainly did not take effect; True when a member may
    hold the request and could still commit it."""

    def __init__(self, message: str, maybe_applied: bool = True) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class WriteRefusedError(EtcdUnavailableError):
    """Raised when a log write was not committed within the gateway's deadline and is now
    guaranteed never to be: no attempt reached a member, or a fence (an empty chunk written
    create-if-absent under the same key) won the key, so no delayed attempt can land."""

    def __init__(self, message: str) -> None:
        super().__init__(message, maybe_applied=False)


class WriteOutcomeUnknownError(EtcdUnavailableError):
    """Raised when a log write was not confirmed within the gateway's deadline and could not be
    fenced either (no quorum reachable): it may still commit. A retry with the same client order
    id is safe (the engine rejects a second copy as ``duplicate_order_id``)."""


class SiteDegradedError(ValidatorError):
    """Raised when a gateway whose site is degraded (UPS on battery, clock unsynchronised, disk
    nearly full) is given new orders: it takes none until the site recovers. ``reasons`` names
    why."""

    def __init__(self, reasons: list[str], first: int) -> None:
        super().__init__(
            f"site degraded ({', '.join(reasons)}): this gateway takes no new orders "
            f"(message {first} is one); send them to another site's gateway. Cancels are still "
            "taken here. Nothing was logged."
        )
        self.reasons = reasons
