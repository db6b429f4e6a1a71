"""Fixtures shared by every test folder: the real local chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devnet.localchain import LocalChain, start_chain


@pytest.fixture(scope="session")
def anvil_chain() -> Iterator[LocalChain]:
    """A real anvil on a free loopback port, for the whole session."""
    with start_chain("anvil") as chain:
        yield chain
