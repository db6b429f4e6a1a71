"""Fault fixtures: each test gets its own anvil (the faults stop, restart or slow it) and a
freshly deployed registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from redundancy.chain import connect
from redundancy.localchain import LocalChain, start_chain
from tests.attestor_sites import Deployed, deploy_registry


@pytest.fixture
def chain_state(tmp_path: Path) -> Path:
    """Where the chain keeps its state across a stop and restart."""
    path = tmp_path / "chain"
    path.mkdir()
    return path


@pytest.fixture
def chain(chain_state: Path) -> Iterator[LocalChain]:
    """A per-test anvil that persists its state (stop it and start another on its port)."""
    c = start_chain("anvil", state_dir=chain_state)
    yield c
    c.stop()


@pytest.fixture
def deployed(chain: LocalChain, tmp_path: Path) -> Deployed:
    return deploy_registry(chain, connect(chain.rpc_url), tmp_path)
