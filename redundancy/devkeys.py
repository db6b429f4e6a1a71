"""The public development accounts of local chains: anvil's default mnemonic and ganache's
``--wallet.deterministic`` one. Everybody knows these keys: never send real value to them.

The deploy command accepts one (``--dev-account N``) on the local chain ids only; the harness
funds and signs with them.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

ChainKind = Literal["anvil", "ganache"]

#: The public development mnemonics: anvil's default, and ganache's ``--wallet.deterministic``.
#: Their keys are known to everyone: never send real value to them.
DEV_MNEMONICS: dict[ChainKind, str] = {
    "anvil": "test test test test test test test test test test test junk",
    "ganache": "myth like bonus scare over problem client lizard pioneer submit female collect",
}


@cache
def _derived_keys(kind: ChainKind, count: int) -> tuple[str, ...]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(
            DEV_MNEMONICS[kind], account_path=f"m/44'/60'/0'/0/{i}"
        ).key.to_0x_hex()
        for i in range(count)
    )


def dev_keys(kind: ChainKind, count: int = 10) -> list[str]:
    """The first ``count`` development private keys of a chain kind, derived from its mnemonic."""
    return list(_derived_keys(kind, count))
