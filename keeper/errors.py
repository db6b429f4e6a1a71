"""The keeper's branch of the project's exception tree."""

from __future__ import annotations

from redundancy.errors import RedundancyError


class KeeperError(RedundancyError):
    """Raised when the keeper cannot start: the failure is named in one line."""


class NotASelectorError(KeeperError):
    """Raised when the configured selector address holds no CommitteeSelector on this chain."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"selector {address} is not a CommitteeSelector on this chain: {reason}")
        self.address = address


class UnfundedKeeperError(KeeperError):
    """Raised when the keeper's account cannot pay for one selection at the gas bound."""

    def __init__(self, address: str, balance: int, needed: int) -> None:
        super().__init__(
            f"account {address} has {balance} wei; one selection may cost up to {needed} wei "
            f"(max_gas x gas price): fund it"
        )
        self.address = address
        self.balance = balance
        self.needed = needed
