"""Transactions as an attacker sends them, and what they did.

A polite client estimates gas first, and the estimate refuses a call that would revert before
it reaches a block. An attacker need not: ``send_unestimated`` signs with a fixed gas limit, so
the transaction is mined and reverts on chain. ``revert_error`` reads the custom error of a
mined transaction from anvil's call trace, and ``changes_to`` what it changed in one account
(anvil's prestate diff: storage slots, balance, code).

(Not the storage root of ``eth_getProof``: anvil's changes when a successful transaction only
*reads* an empty slot of the contract, so equal roots cannot be asked of a call that looks up
an unknown id.)
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from redundancy.chain import ContractClient, ErrorDecoder
from redundancy.errors import ContractRevertError

#: Enough for every call under test: a revert is then never for want of gas.
ATTACK_GAS = 8_000_000
#: Above anvil's base fee (1 gwei at genesis, falling over empty blocks).
GAS_PRICE = 10**10
_CHAIN_IDS: dict[int, int] = {}


def _chain_id(w3: Web3) -> int:
    if id(w3) not in _CHAIN_IDS:
        _CHAIN_IDS[id(w3)] = w3.eth.chain_id
    return _CHAIN_IDS[id(w3)]


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call; raises AssertionError carrying the node's error."""
    answer = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in answer:
        raise AssertionError(f"{method} failed: {answer['error']}")
    return answer["result"]


def send_unestimated(
    w3: Web3,
    sender: LocalAccount,
    to: str,
    data: bytes | str,
    *,
    value: int = 0,
    gas: int = ATTACK_GAS,
) -> TxReceipt:
    """Sign and send a call with a fixed gas limit (no estimate), wait until it is mined."""
    tx = {
        "from": sender.address,
        "to": Web3.to_checksum_address(to),
        "data": data if isinstance(data, str) else "0x" + data.hex(),
        "value": value,
        "gas": gas,
        "gasPrice": GAS_PRICE,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": _chain_id(w3),
    }
    signed = sender.sign_transaction(tx)  # type: ignore[arg-type]
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def calldata(fn: ContractFunction) -> str:
    """The calldata of a bound contract call."""
    return str(fn._encode_transaction_data())


def revert_error(w3: Web3, receipt: TxReceipt, decoder: ErrorDecoder) -> ContractRevertError:
    """The custom error a mined transaction reverted with (from its call trace).

    Raises AssertionError if it did not revert, or reverted with no data (a panic or an
    out-of-gas would show as a Panic error or as no data, never as a custom error)."""
    assert receipt["status"] == 0, "the transaction did not revert"
    trace = rpc(
        w3,
        "debug_traceTransaction",
        receipt["transactionHash"].to_0x_hex(),
        {"tracer": "callTracer"},
    )
    output = str(trace.get("output") or "0x")
    assert len(output) >= 10, f"reverted without a custom error: {trace.get('error')}"
    return decoder.decode(output)


def mine(w3: Web3) -> int:
    """Mine an empty block now; returns its timestamp (the chain's clock, read fresh)."""
    rpc(w3, "evm_mine")
    return int(w3.eth.get_block("latest")["timestamp"])


def changes_to(w3: Web3, receipt: TxReceipt, address: str) -> dict[str, Any]:
    """What a mined transaction changed in the account at ``address`` (its storage slots,
    balance, nonce or code, after the transaction); empty if nothing."""
    diff = rpc(
        w3,
        "debug_traceTransaction",
        receipt["transactionHash"].to_0x_hex(),
        {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}},
    )
    changed: dict[str, Any] = diff["post"].get(address.lower(), {})
    return changed


def refusals(
    client: ContractClient, fn: ContractFunction, sender: LocalAccount
) -> list[ContractRevertError]:
    """Send ``fn`` to ``client``'s contract as a polite client does (estimated first: refused
    before any block) and as an attacker does (mined unestimated); the custom error of each.
    Fails unless both are refused, and the mined one logged nothing and changed nothing in the
    contract."""
    try:
        client.tx.send(fn, sender)
    except ContractRevertError as polite:
        refused = polite
    else:
        raise AssertionError("the estimated call was accepted")
    receipt = send_unestimated(client.w3, sender, client.address, calldata(fn))
    mined = revert_error(client.w3, receipt, client.errors)
    assert receipt["logs"] == [], "a reverted transaction logged events"
    assert changes_to(client.w3, receipt, client.address) == {}, "it changed the contract"
    return [refused, mined]
