"""Exceptions of the distributed node: its etcd input log."""

from __future__ import annotations

from validator.engine.errors import ValidatorError


class EtcdError(ValidatorError):
    """Raised when etcd refuses a request or answers it with an error."""


class EtcdUnavailableError(EtcdError):
    """Raised when no etcd member answers in time: members down, or the cluster has no
    quorum (a write cannot commit). Nothing was acknowledged."""
