"""Adversarial fixtures: a fresh anvil per module (its clock and state are the module's own),
its development accounts, and the per-class count of cases printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.localchain import LocalChain, start_chain
from redundancy.chain import connect
from tests.adversarial import tally


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(tally.summary())


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalChain]:
    """A fresh anvil for one module."""
    with start_chain("anvil") as running:
        yield running


@pytest.fixture(scope="module")
def w3(chain: LocalChain) -> Web3:
    return connect(chain.rpc_url)


def dev_account(chain: LocalChain, index: int) -> LocalAccount:
    account: LocalAccount = Account.from_key(chain.dev_keys[index])
    return account


@pytest.fixture(scope="module")
def owner(chain: LocalChain) -> LocalAccount:
    """The deployer: owner of every contract of the module."""
    return dev_account(chain, 0)


@pytest.fixture(scope="module")
def relayer(chain: LocalChain) -> LocalAccount:
    """Anyone: relays proofs and batches (the signature is the authority, not the sender)."""
    return dev_account(chain, 5)
