"""The harness's exception branch, under the project's root ``RedundancyError``."""

from __future__ import annotations

from redundancy.errors import RedundancyError


class DevnetError(RedundancyError):
    """Raised when the development harness cannot do its job (root of the harness's branch)."""


class ToolchainError(DevnetError):
    """Raised when a required tool (anvil, ganache, solc, etcd) is missing or fails to start."""


class CompilationError(ToolchainError):
    """Raised when the Solidity sources do not compile, or artifacts are out of date."""
