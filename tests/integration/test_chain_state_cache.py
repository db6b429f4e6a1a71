"""A started anvil persists the historical states it no longer keeps in memory into a directory
of its own, and stopping the chain removes it (anvil itself leaves them under
``~/.foundry/anvil/tmp`` for ever, even on SIGTERM: a long adversarial run filled the disk)."""

from __future__ import annotations

import signal
import time

import pytest

from devnet.http import rpc_call
from devnet.localchain import start_chain

DEV = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
PEER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _mine_transfers(url: str, count: int) -> None:
    for _ in range(count):
        rpc_call(url, "eth_sendTransaction", [{"from": DEV, "to": PEER, "value": "0x1"}])


def test_old_states_go_to_the_chains_own_directory_and_stop_removes_it() -> None:
    with start_chain("anvil") as chain:
        cache = chain.cache_dir
        assert cache is not None and cache.is_dir()
        _mine_transfers(chain.rpc_url, 700)  # more blocks than anvil keeps in memory
        deadline = time.monotonic() + 10  # anvil writes them in the background
        while not any(p.is_file() for p in cache.rglob("*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(p.is_file() for p in cache.rglob("*")), "anvil persisted no state there"
        # a persisted state still answers a historical query
        balance = rpc_call(chain.rpc_url, "eth_getBalance", [PEER, "0x5"])
        assert int(balance, 16) == 10_000 * 10**18 + 5
    assert not cache.exists()


def test_a_killed_chain_s_states_are_removed_at_stop() -> None:
    chain = start_chain("anvil")
    cache = chain.cache_dir
    assert cache is not None
    _mine_transfers(chain.rpc_url, 300)
    assert chain.process is not None
    chain.process.send_signal(signal.SIGKILL)  # a fault test cutting the chain's power
    chain.process.wait()
    assert not chain.alive()  # the signal reached anvil itself, not a wrapper in front of it
    with pytest.raises(OSError):
        rpc_call(chain.rpc_url, "eth_chainId", timeout=1.0)
    chain.stop()
    assert not cache.exists()


def test_stop_returns_once_anvil_has_exited_and_its_port_is_free() -> None:
    chain = start_chain("anvil")
    _mine_transfers(chain.rpc_url, 5)
    chain.stop()
    with pytest.raises(OSError):
        rpc_call(chain.rpc_url, "eth_chainId", timeout=1.0)
    assert chain.cache_dir is not None and not chain.cache_dir.exists()
