"""The engine's whole state, as plain tables the handlers work on directly.

Series and accounts get a dense index the first time they appear; order and
holding records refer to them by index, and each series owns its book. The
indices are internal: nothing observable (results, snapshots, hashes) depends
on them, so a restored engine may number things differently and still behave
identically.
"""

from __future__ import annotations

from validator.engine.accounts import Account
from validator.engine.instruments import ExpiryGroup, Series
from validator.engine.primitives import AccountId, Expiry, SeriesId, Underlying


class State:
    """Series (with their books), accounts, expiries, and the sequence number of the last input."""

    __slots__ = (
        "accounts",
        "accounts_by_id",
        "expiries",
        "seq",
        "series",
        "series_by_id",
        "series_part",
        "sorted_accounts",
        "sorted_series",
    )

    def __init__(self) -> None:
        self.seq = 0
        self.series: list[Series] = []
        self.series_by_id: dict[SeriesId, Series] = {}
        self.accounts: list[Account] = []
        self.accounts_by_id: dict[AccountId, Account] = {}
        self.expiries: dict[tuple[Underlying, Expiry], ExpiryGroup] = {}
        # Kept by ``snapshot.dump`` between snapshots (accounts and series are only ever added):
        # both tables sorted by id, and the listing of every series as last written.
        self.sorted_accounts: list[Account] = []
        self.sorted_series: list[Series] = []
        self.series_part = b"[]"

    def open_account(self, account_id: AccountId) -> Account:
        """Add an empty account (the id must be new)."""
        account = Account(len(self.accounts), account_id)
        self.accounts.append(account)
        self.accounts_by_id[account_id] = account
        return account

    def add_series(self, series: Series, group: ExpiryGroup) -> None:
        """Add a series (its index must be the next one)."""
        self.series.append(series)
        self.series_by_id[series.id] = series
        group.series.append(series)
