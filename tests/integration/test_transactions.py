"""Sending transactions on a real anvil: a transaction the chain stops mining at its price (the
base fee rose after it was sent) is re-priced with the same nonce until it is mined, once; one
still unmined at its timeout is sent again before the next one from its key; a re-price the
sender cannot pay is named in the timeout; no price goes above the sender's fee cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

from devnet.attestors import fund
from devnet.localchain import LocalChain, start_chain
from keeper.cli import build_keeper
from keeper.cli import read_settings as read_keeper_settings
from redundancy.chain import connect
from redundancy.errors import FeeCapError
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient
from tests.unit.test_node_settings import CHAIN, site_config
from validator.node.cli import read_settings as read_node_settings
from validator.node.etcd import EtcdClient
from validator.node.settler import build_settler


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    reply = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in reply, reply
    return reply.get("result")


def _stalled(w3: Web3, sender: str, send: Callable[[], Any], join: float) -> Stalled:
    """Run ``send`` in a thread with mining paused; once its transaction is in the pool, raise
    the next block's base fee a hundredfold and mine that block (without the transaction: its
    price is too low), then mine a block a second: the base fee decays by 1/8 a block, so the
    first price is minable again only after ~30 blocks."""
    nonce = w3.eth.get_transaction_count(sender)
    _rpc(w3, "evm_setAutomine", False)
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(send())
        except Exception as exc:  # reported to the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not (pending := _rpc(w3, "eth_getBlockByNumber", "pending", True)["transactions"]):
        assert time.monotonic() < deadline, "the transaction never reached the pool"
        time.sleep(0.05)
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(100 * base))
    _rpc(w3, "evm_mine")
    mined_at_first_price = w3.eth.get_transaction_count(sender) > nonce
    _rpc(w3, "evm_setIntervalMining", 1)
    thread.join(join)
    assert not thread.is_alive()
    return Stalled(out[0], nonce, int(pending[0]["maxFeePerGas"], 16), mined_at_first_price)


@dataclass(frozen=True)
class Stalled:
    outcome: Any
    """What the send returned (a receipt) or raised."""
    nonce: int
    first_max_fee: int
    mined_at_first_price: bool


def test_a_transaction_under_a_risen_base_fee_is_re_priced_and_mined_once() -> None:
    """Re-priced every second, it is mined well within the 15 s receipt timeout."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        registry.tx.receipt_timeout, registry.tx.reprice_after = 15.0, 1.0
        new_owner = Account.create().address
        fn = registry.contract.functions.transferOwnership(new_owner)
        run = _stalled(w3, owner.address, lambda: registry.tx.send(fn, owner), 30)
        assert run.mined_at_first_price is False  # the scenario really stalled it
        assert not isinstance(run.outcome, Exception), run.outcome
        assert run.outcome["status"] == 1
        mined = w3.eth.get_transaction(run.outcome["transactionHash"])
        assert mined["nonce"] == run.nonce  # the same transaction, at a new price
        assert mined["maxFeePerGas"] > run.first_max_fee
        assert w3.eth.get_transaction_count(owner.address) == run.nonce + 1  # mined once
        assert registry.contract.functions.pendingOwner().call() == new_owner


def test_a_transaction_unmined_at_its_timeout_is_sent_again_before_the_next_one() -> None:
    """The first transaction is stalled by a hundredfold base fee past its receipt timeout (no
    re-pricing within it) and stays in the pool. Before, the next one from the same key either
    took the next nonce and queued behind it at any price (a pool that counts it in the pending
    nonce, as geth's does) or took its nonce and replaced it (anvil's, which does not: the stalled
    one was dropped). Now the next send first sends the stalled one again at a price the chain
    takes: both are mined, in order."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        registry.tx.receipt_timeout, registry.tx.reprice_after = 2.0, 1_000.0
        first, second = Account.create().address, Account.create().address
        fn = registry.contract.functions.transferOwnership(first)
        run = _stalled(w3, owner.address, lambda: registry.tx.send(fn, owner), 10)
        assert type(run.outcome).__name__ == "TimeExhausted"
        nonce = run.nonce
        assert w3.eth.get_transaction_count(owner.address) == nonce  # still unmined
        registry.tx.receipt_timeout = 10.0  # the base fee is still ~50x: ~30 blocks from minable
        receipt = registry.tx.send(registry.contract.functions.transferOwnership(second), owner)
        assert receipt["status"] == 1
        assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce + 1
        assert w3.eth.get_transaction_count(owner.address) == nonce + 2
        assert registry.contract.functions.pendingOwner().call() == second


def test_a_re_price_the_sender_cannot_pay_is_named_in_the_timeout() -> None:
    """The sender holds enough for its transaction's first price, not for a re-price after a
    hundredfold base fee: the node refuses the re-priced copy. The timeout the caller gets says
    so (which account, what price), and a warning is logged; before, the refusal was logged at
    info and the caller saw a bare timeout."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        poor = Account.create()
        fund(w3, owner, [poor.address], 10**18)
        registry, _ = RegistryClient.deploy(w3, poor)
        keep, price = 10**15, int(w3.eth.gas_price)  # 0.001 ETH: the first price, not a re-price
        drain = {
            "to": owner.address,
            "value": int(w3.eth.get_balance(poor.address)) - keep - 21_000 * price,
            "gas": 21_000,
            "gasPrice": price,
            "nonce": w3.eth.get_transaction_count(poor.address),
            "chainId": w3.eth.chain_id,
        }
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(poor.sign_transaction(drain).raw_transaction)
        )
        assert w3.eth.get_balance(poor.address) == keep
        registry.tx.receipt_timeout, registry.tx.reprice_after = 3.0, 1.0
        fn = registry.contract.functions.transferOwnership(owner.address)
        run = _stalled(w3, poor.address, lambda: registry.tx.send(fn, poor), 15)
        assert type(run.outcome).__name__ == "TimeExhausted"
        message = str(run.outcome)
        assert f"not re-priced: {poor.address} cannot pay max fee" in message, message
        assert "funds" in message.lower(), message


def _next_once_the_fee_falls(
    w3: Web3, registry: RegistryClient, owner: LocalAccount, run: Stalled, base: int
) -> TxReceipt:
    """Bring the base fee back to ``base``, then send the key's next transaction: the one
    ``run`` left unmined is mined first (nonce n), then the new one (n + 1); its receipt."""
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(base))
    _rpc(w3, "evm_mine")
    second = Account.create().address
    receipt = registry.tx.send(registry.contract.functions.transferOwnership(second), owner)
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == run.nonce + 1
    assert w3.eth.get_transaction_count(owner.address) == run.nonce + 2
    assert registry.contract.functions.pendingOwner().call() == second
    return receipt


def test_a_re_price_stops_at_the_fee_cap() -> None:
    """A hundredfold base fee stalls a transaction; the fee cap is 150 times the old base fee,
    above the new one. Re-priced, it would ask twice the new base fee plus the tip (over 200
    times); it asks the cap exactly instead, and is mined at that price, once."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        cap = 150 * int(w3.eth.get_block("latest")["baseFeePerGas"])
        registry.tx.max_fee_per_gas = cap
        registry.tx.receipt_timeout, registry.tx.reprice_after = 15.0, 1.0
        fn = registry.contract.functions.transferOwnership(owner.address)
        run = _stalled(w3, owner.address, lambda: registry.tx.send(fn, owner), 30)
        assert run.mined_at_first_price is False
        assert not isinstance(run.outcome, Exception), run.outcome
        mined = w3.eth.get_transaction(run.outcome["transactionHash"])
        assert mined["nonce"] == run.nonce
        assert int(mined["maxFeePerGas"]) == cap
        assert w3.eth.get_transaction_count(owner.address) == run.nonce + 1


def test_a_transaction_the_fee_cap_keeps_from_a_re_price_is_sent_again_once_the_fee_falls() -> None:
    """The fee cap is about twice the first price, below the hundredfold base fee: no re-price
    could be mined, so none is sent, and the timeout says why. Once the base fee falls under the
    cap, the key's next send first sends the waiting transaction again (anvil dropped it from its
    pool; geth's would still hold it), then its own: both are mined, in order, at no more than
    the cap. A send before the fee falls is refused: nothing queues behind the waiting one."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        base = int(w3.eth.get_block("latest")["baseFeePerGas"])
        cap = 2 * (2 * base + int(w3.eth.max_priority_fee))
        registry.tx.max_fee_per_gas = cap
        registry.tx.receipt_timeout, registry.tx.reprice_after = 3.0, 1.0
        fn = registry.contract.functions.transferOwnership(owner.address)
        run = _stalled(w3, owner.address, lambda: registry.tx.send(fn, owner), 15)
        assert run.mined_at_first_price is False
        assert run.first_max_fee < cap
        assert type(run.outcome).__name__ == "TimeExhausted"
        assert str(run.outcome).endswith(
            f"at any of 1 prices; not re-priced: the price it needs is above the fee cap of "
            f"{cap} wei"
        ), run.outcome
        assert w3.eth.get_transaction_count(owner.address) == run.nonce
        with pytest.raises(FeeCapError) as refused:  # nothing is sent behind it meanwhile
            registry.tx.send(registry.contract.functions.transferOwnership(owner.address), owner)
        assert f"transaction nonce {run.nonce} is still unmined" in str(refused.value)
        assert w3.eth.get_transaction_count(owner.address, "pending") == run.nonce
        receipt = _next_once_the_fee_falls(w3, registry, owner, run, base)
        block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
        fees = [int(t["maxFeePerGas"]) for t in block["transactions"] if t["from"] == owner.address]
        assert fees and all(fee <= cap for fee in fees)


def test_a_transaction_sent_at_the_fee_cap_and_dropped_is_sent_again_once_the_fee_falls() -> None:
    """The first price is the cap itself (the cap is under twice the base fee plus the tip), so
    no re-price can ever be a replacement. Stalled by a hundredfold base fee, the transaction
    times out and anvil drops it; once the base fee is back under the cap, the next send sends
    it again at its own price, then its own: both are mined. Before, the next send refused
    for good (no re-price fits under the cap), and the key could never send again."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        base = int(w3.eth.get_block("latest")["baseFeePerGas"])
        cap = base + int(w3.eth.max_priority_fee) // 2
        registry.tx.max_fee_per_gas = cap
        registry.tx.receipt_timeout, registry.tx.reprice_after = 3.0, 1.0
        fn = registry.contract.functions.transferOwnership(owner.address)
        run = _stalled(w3, owner.address, lambda: registry.tx.send(fn, owner), 15)
        assert run.first_max_fee == cap
        assert type(run.outcome).__name__ == "TimeExhausted"
        assert w3.eth.get_transaction_count(owner.address) == run.nonce
        _next_once_the_fee_falls(w3, registry, owner, run, base)


def test_nothing_is_sent_while_the_base_fee_is_above_the_fee_cap() -> None:
    """The base fee is raised to 10 gwei and the cap is 5: the send is refused before signing,
    with both prices named, and the key's nonce is unchanged; under a cap above the base fee the
    same call is sent and mined at no more than the cap."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(10 * 10**9))
        _rpc(w3, "evm_mine")
        base = int(w3.eth.get_block("latest")["baseFeePerGas"])
        assert base == 10 * 10**9
        nonce = w3.eth.get_transaction_count(owner.address, "pending")
        registry.tx.max_fee_per_gas = 5 * 10**9
        fn = registry.contract.functions.transferOwnership(owner.address)
        with pytest.raises(FeeCapError) as refused:
            registry.tx.send(fn, owner)
        assert str(refused.value) == (
            f"the chain asks {base} wei per gas, above the fee cap of {5 * 10**9} wei: not sent"
        )
        assert w3.eth.get_transaction_count(owner.address, "pending") == nonce
        registry.tx.max_fee_per_gas = base + 10**9
        receipt = registry.tx.send(fn, owner)
        assert receipt["status"] == 1
        assert (
            int(w3.eth.get_transaction(receipt["transactionHash"])["maxFeePerGas"]) == base + 10**9
        )


def test_the_fee_cap_settings_reach_the_node_and_keeper_transactions(
    anvil_chain: LocalChain, tmp_path: Path
) -> None:
    """``max_fee_gwei`` in a node's chain table caps its ledger client's transactions, and in a
    keeper's settings its selections'; in wei."""
    w3 = connect(anvil_chain.rpc_url)
    owner = Account.from_key(anvil_chain.dev_keys[0])
    registry, _ = RegistryClient.deploy(w3, owner)
    selector, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(3), GeographyPolicy()
    )
    chain = {**CHAIN, "rpc_url": anvil_chain.rpc_url, "max_fee_gwei": 2.5}
    _, settings = read_node_settings(["run", "--config", str(site_config(tmp_path, chain=chain))])
    assert settings.chain is not None
    settler = build_settler(settings, settings.chain, EtcdClient(["http://127.0.0.1:9"]))
    assert settler.ledger.tx.max_fee_per_gas == 2_500_000_000
    keeper_toml = tmp_path / "keeper.toml"
    keeper_toml.write_text(
        f'rpc_url = "{anvil_chain.rpc_url}"\nselector = "{selector.address}"\n'
        f'dev_key = "{anvil_chain.dev_keys[0]}"\nmax_fee_gwei = 0.75\n'
    )
    keeper_settings = read_keeper_settings(["--config", str(keeper_toml)])
    keeper = build_keeper(keeper_settings, owner)
    assert keeper.selector.tx.max_fee_per_gas == 750_000_000
