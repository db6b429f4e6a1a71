"""The demo's ``--rpc-url``: attaching to a local development chain that is already running,
and the one-line refusals of anything else."""

from __future__ import annotations

import subprocess
import time

import pytest

from devnet.errors import ToolchainError
from devnet.http import rpc_call
from devnet.localchain import LocalChain, attach_chain, start_chain
from devnet.ports import free_port
from devnet.toolchain import node_bin


def test_attaching_to_a_running_anvil_finds_its_kind_and_leaves_it_running(
    anvil_chain: LocalChain,
) -> None:
    chain = attach_chain(anvil_chain.rpc_url)
    assert (chain.kind, chain.chain_id, chain.rpc_url) == ("anvil", 31337, anvil_chain.rpc_url)
    assert chain.dev_keys[:3] == anvil_chain.dev_keys[:3]
    assert chain.process is None and chain.alive()
    chain.stop()  # an attached chain is not ours to stop
    assert anvil_chain.alive() and attach_chain(anvil_chain.rpc_url).alive()


def test_nothing_listening_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ToolchainError, match=f"no chain answers at {url}"):
        attach_chain(url)


def test_a_chain_that_is_not_a_local_development_chain_is_refused() -> None:
    with start_chain("anvil", chain_id=5) as chain, pytest.raises(ToolchainError) as caught:
        attach_chain(chain.rpc_url)
    assert "is chain 5: the demo needs a local development chain" in str(caught.value)


def test_a_ganache_without_deterministic_accounts_is_refused_with_the_fix() -> None:
    with start_chain("ganache") as chain:  # started here with -d: account 0 is funded
        assert attach_chain(chain.rpc_url).kind == "ganache"
    port = free_port()
    random_accounts = subprocess.Popen(
        [str(node_bin("ganache")), "--server.host", "127.0.0.1", "--server.port", str(port),
         "--logging.quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc_call(url, "eth_chainId")
                break
            except OSError:
                assert time.monotonic() < deadline, "ganache did not start"
                time.sleep(0.2)
        with pytest.raises(ToolchainError) as caught:
            attach_chain(url)
    finally:
        random_accounts.terminate()
        random_accounts.wait(timeout=30)
    assert "has 0 wei on the ganache chain" in str(caught.value)
    assert "start ganache with --wallet.deterministic (-d)" in str(caught.value)
