"""Fault fixtures: a per-test anvil that can be stopped and restarted (with a freshly deployed
registry), and a real 3-member etcd cluster on loopback with one node + gateway per member."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.localchain import LocalChain, start_chain
from devnet.nodes import Sites, make_sites
from redundancy.chain import connect
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


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path / "etcd") as c:
        yield c


@pytest.fixture
def sites(cluster: EtcdCluster, tmp_path: Path) -> Iterator[Sites]:
    s = make_sites(cluster, tmp_path, snapshot_every=4, batch_every=2, etcd_timeout=1.0)
    yield s
    s.stop()


@pytest.fixture
def uncompacted_sites(cluster: EtcdCluster, tmp_path: Path) -> Iterator[Sites]:
    """Sites that never snapshot, so the whole log stays in etcd for inspection."""
    s = make_sites(cluster, tmp_path, snapshot_every=10**6, batch_every=2, etcd_timeout=1.0)
    yield s
    s.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (the long campaign) run only when asked for with ``-m slow``."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long-running: opt in with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
