"""Connecting to a chain and sending transactions with a local key, with decoded reverts.

Every part of the project talks to the chain through here (and ``registry.py`` on top of it), so
an unreachable RPC, an unfunded key or a custom-error revert reads the same everywhere.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3RPCError,
)
from web3.logs import DISCARD
from web3.providers.rpc import HTTPProvider
from web3.types import BlockIdentifier, EventData, RPCResponse, TxReceipt

from redundancy.artifacts import load_artifact
from redundancy.errors import (
    ChainError,
    ChainUnreachableError,
    ContractRevertError,
    FeeCapError,
    InsufficientFundsError,
)

T = TypeVar("T")
log = logging.getLogger("redundancy.chain")


class CheckedHTTPProvider(HTTPProvider):
    """web3's HTTP provider, but a reply that is not a JSON-RPC object (an HTML error page from
    a proxy, a cut or non-UTF-8 body, JSON nested past the parser) raises
    ``ChainUnreachableError`` like a refused connection: web3 let ``JSONDecodeError`` (a
    ``ValueError``) through, which ended the keeper's loop and made the API answer 500."""

    def decode_rpc_response(self, raw_response: bytes) -> RPCResponse:  # type: ignore[override]
        try:
            response = HTTPProvider.decode_rpc_response(raw_response)
        except (ValueError, RecursionError) as exc:
            reason = f"the reply is not JSON ({type(exc).__name__})"
            raise ChainUnreachableError(str(self.endpoint_uri), reason) from None
        if not isinstance(response, dict | list):
            reason = f"the reply is not a JSON-RPC object ({type(response).__name__})"
            raise ChainUnreachableError(str(self.endpoint_uri), reason)
        return response


def web3_for(rpc_url: str, timeout: float = 10.0) -> Web3:
    """A Web3 on ``rpc_url`` (nothing is sent yet; requests fail after ``timeout`` seconds)."""
    return Web3(
        CheckedHTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
    )


def connect(rpc_url: str, timeout: float = 10.0) -> Web3:
    """A Web3 on ``rpc_url``; raises ChainUnreachableError if it does not answer."""
    w3 = web3_for(rpc_url, timeout)
    try:
        w3.eth.chain_id  # noqa: B018 - the call is the reachability check
    except Exception as exc:  # requests' and web3's connection errors differ by version
        raise ChainUnreachableError(rpc_url, one_line(exc)) from None
    return w3


LOG_RANGE = 5_000
"""Blocks per ``eth_getLogs`` call: public RPC endpoints refuse wide ranges."""

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


def one_line(exc: BaseException) -> str:
    """The root cause of a connection failure in a few words ("Connection refused")."""
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    lines = text.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]


@dataclass(frozen=True)
class _ErrorSpec:
    name: str
    names: list[str]
    types: list[str]


class ErrorDecoder:
    """Turns revert data into the contract's custom error name and arguments."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._by_selector: dict[str, _ErrorSpec] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            selector = "0x" + function_abi_to_4byte_selector(item).hex()  # type: ignore[arg-type]
            self._by_selector[selector] = _ErrorSpec(
                item["name"],
                [i["name"] for i in item["inputs"]],
                [_abi_type(i) for i in item["inputs"]],
            )

    def name_of(self, selector: str | bytes) -> str:
        """The error name for a 4-byte selector (or the hex selector if unknown)."""
        key = selector if isinstance(selector, str) else "0x" + selector.hex()
        spec = self._by_selector.get(key.lower())
        return spec.name if spec else key

    def selector_of(self, name: str) -> bytes:
        """The 4-byte selector of a custom error by name (KeyError if the ABI has none)."""
        for selector, spec in self._by_selector.items():
            if spec.name == name:
                return bytes.fromhex(selector[2:])
        raise KeyError(name)

    def decode(self, data: str | bytes) -> ContractRevertError:
        """Decode revert data (``0x`` + selector + ABI args)."""
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else data
        selector = "0x" + raw[:4].hex()
        spec = self._by_selector.get(selector)
        if spec is None:
            return ContractRevertError("UnknownError", {"data": raw}, selector)
        values = abi_decode(spec.types, raw[4:])
        return ContractRevertError(spec.name, dict(zip(spec.names, values, strict=True)), selector)


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


class Transactor:
    """Sends contract transactions signed by a local account and waits for their receipts.

    A transaction not mined within ``reprice_after`` seconds is sent again with the same nonce
    and its fees re-priced (at least 1/8 more than the last price, which every client's
    replacement rule accepts, and at least twice the latest base fee plus the tip): a base fee
    that rose after it was sent no longer leaves it, and every later transaction of the same
    key queued behind it, pending until the receipt timeout. Whichever price is mined, its
    receipt is the answer.

    A transaction still not mined at the receipt timeout stays in the pool, and every later
    transaction of its key would queue behind it at whatever price: it is remembered, and the
    next ``send`` from that key first sends it again, re-priced, then its own.

    ``max_fee_per_gas`` (wei, None for none) caps every price sent, first or re-priced: a
    transaction is not sent while the chain's base fee (or gas price) is above it (FeeCapError,
    nothing sent), and a re-price stops at it, so a fee spike delays work instead of draining
    the key.
    """

    def __init__(
        self,
        w3: Web3,
        decoder: ErrorDecoder,
        receipt_timeout: float = 120.0,
        reprice_after: float = 30.0,
        max_fee_per_gas: int | None = None,
    ) -> None:
        self.w3 = w3
        self.decoder = decoder
        self.receipt_timeout = receipt_timeout
        self.reprice_after = reprice_after
        self.max_fee_per_gas = max_fee_per_gas
        self._chain_id = w3.eth.chain_id
        self._unmined: dict[str, dict[int, dict[str, Any]]] = {}
        """Per sender: the transactions that timed out unmined, by nonce, at their last price."""

    def call(self, fn: Callable[[], T]) -> T:
        """Run a view call, turning custom-error reverts into ContractRevertError."""
        try:
            return fn()
        except ContractLogicError as exc:
            data = _revert_data(exc)
            if len(data) >= 10:
                raise self.decoder.decode(data) from None
            raise ContractRevertError("Revert", {"message": str(exc)}, "0x") from None
        except (ConnectionError, OSError) as exc:
            endpoint = str(getattr(self.w3.provider, "endpoint_uri", "the RPC endpoint"))
            raise ChainUnreachableError(endpoint, one_line(exc)) from None

    def send(
        self,
        fn: ContractFunction | ContractConstructor,
        sender: LocalAccount,
        *,
        value: int = 0,
        gas: int | None = None,
    ) -> TxReceipt:
        """Estimate, sign, send and wait. Raises ContractRevertError with the decoded error if the
        call would revert, InsufficientFundsError if the sender cannot pay."""
        self._unstick(sender)
        params: dict[str, Any] = {
            "from": sender.address,
            "value": value,
            "chainId": self._chain_id,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
        }
        try:
            if gas is None:
                # Headroom over the estimate: the estimate runs against the pending block, and
                # a path that depends on block.timestamp or on a transaction landing first may
                # cost more by the time this one is mined. Still a bound on every transaction.
                estimate = int(fn.estimate_gas(params))  # type: ignore[arg-type]
                limit = int(self.w3.eth.get_block("latest")["gasLimit"])
                gas = min(estimate + estimate // GAS_HEADROOM_DIVISOR + GAS_HEADROOM_FLAT, limit)
            params["gas"] = gas
            tx = self._capped(dict(fn.build_transaction(params)))  # type: ignore[arg-type]
        except ContractLogicError as exc:  # includes ContractCustomError
            data = _revert_data(exc)
            if len(data) >= 10:
                raise self.decoder.decode(data) from None
            raise ContractRevertError("Revert", {"message": str(exc)}, "0x") from None
        except Web3RPCError as exc:
            self._raise_funds(exc, sender.address)
            raise ChainError(one_line(exc)) from None
        signed = sender.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            self._raise_funds(exc, sender.address)
            raise ChainError(one_line(exc)) from None
        receipt = self._await_receipt(dict(tx), bytes(tx_hash), sender)
        if receipt["status"] != 1:
            raise self._mined_revert(tx, receipt)
        return receipt

    def _await_receipt(self, tx: dict[str, Any], tx_hash: bytes, sender: LocalAccount) -> TxReceipt:
        """The receipt of ``tx`` at any of the prices it was sent at, re-pricing it every
        ``reprice_after`` seconds; TimeExhausted after ``receipt_timeout`` (saying so when the
        sender could not pay the last re-price)."""
        hashes = [tx_hash]
        start = time.monotonic()
        reprice_at = start + self.reprice_after
        unpaid = ""
        """Why the last re-price was not sent, when the sender could not pay it."""
        capped = ""
        """That re-pricing stopped at the fee cap."""
        while True:
            for h in hashes:
                try:
                    return self.w3.eth.get_transaction_receipt(h)  # type: ignore[arg-type]
                except (TransactionNotFound, TransactionIndexingInProgress):  # not yet known
                    pass
            now = time.monotonic()
            if now - start >= self.receipt_timeout:
                self._unmined.setdefault(sender.address, {})[int(tx["nonce"])] = tx
                raise TimeExhausted(
                    f"transaction {hashes[-1].hex()} (nonce {tx['nonce']}) not mined within "
                    f"{self.receipt_timeout:g} s at any of {len(hashes)} prices{unpaid}{capped}"
                )
            if now >= reprice_at:
                reprice_at = now + self.reprice_after
                again = self._repriced(tx)
                if again is None:
                    if not capped:
                        capped = (
                            "; not re-priced: the price it needs is above the fee cap of "
                            f"{self.max_fee_per_gas} wei"
                        )
                        log.warning(
                            "transaction nonce %d not mined after %.0f s and not re-priced: the "
                            "price it needs is above the fee cap; it waits at %s", tx["nonce"],
                            now - start, _price(tx),
                        )  # fmt: skip
                    time.sleep(0.1)
                    continue
                try:
                    signed = sender.sign_transaction(again)
                    hashes.append(bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction)))
                except Web3RPCError as exc:  # e.g. nonce too low: an earlier price was mined
                    if _wants_funds(exc):
                        unpaid = (
                            f"; not re-priced: {sender.address} cannot pay {_price(again)} "
                            f"({one_line(exc)})"
                        )
                        log.warning(
                            "transaction nonce %d not mined after %.0f s and not re-priced: %s "
                            "cannot pay %s; it waits at its last price", tx["nonce"],
                            now - start, sender.address, _price(again),
                        )  # fmt: skip
                    else:
                        log.info("re-priced transaction nonce %d not sent: %s", tx["nonce"], exc)
                else:
                    tx, unpaid, capped = again, "", ""
                    log.info(
                        "transaction nonce %d not mined after %.0f s: sent again at a higher "
                        "price (%s)", tx["nonce"], now - start, _price(tx),
                    )  # fmt: skip
            time.sleep(0.1)

    def _unstick(self, sender: LocalAccount) -> None:
        """Send again, re-priced, each transaction of ``sender`` that timed out and is still not
        mined (lowest nonce first), so that the next one does not queue behind it."""
        held = self._unmined.get(sender.address)
        if not held:
            return
        mined = self.w3.eth.get_transaction_count(sender.address, "latest")
        for nonce in sorted(held):
            if nonce < mined:  # mined at one of its prices, or replaced
                del held[nonce]
                continue
            tx = self._repriced(held[nonce])
            if tx is None:  # the cap leaves no price a replacement could have
                if not self._minable(held[nonce]):
                    raise FeeCapError(
                        _price_value(held[nonce]),
                        int(self.max_fee_per_gas or 0),
                        f"transaction nonce {nonce} is still unmined, below the base fee, and "
                        f"its re-price would be above the fee cap of {self.max_fee_per_gas} "
                        "wei: nothing is sent behind it",
                    )
                tx = held[nonce]  # minable at its own price: sent again as it is (a pool that
                # dropped it takes it back; one that still has it says so), the next behind it
            try:
                self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
            except Web3RPCError as exc:  # mined meanwhile, or the pool dropped a nonce below it
                log.info("timed-out transaction nonce %d not sent again: %s", nonce, exc)
                continue
            held[nonce] = tx
            log.info(
                "transaction nonce %d, unmined at its receipt timeout, sent again (%s) before "
                "the next", nonce, _price(tx),
            )  # fmt: skip

    def _minable(self, tx: dict[str, Any]) -> bool:
        """Whether ``tx``'s own price covers the chain's latest base fee."""
        block = self.w3.eth.get_block("latest")
        return _price_value(tx) >= int(block.get("baseFeePerGas", 0))

    def check_fee_cap(self) -> None:
        """FeeCapError if the chain's latest base fee (or, before EIP-1559, its gas price) is
        above the fee cap: nothing sent now could be mined."""
        cap = self.max_fee_per_gas
        if cap is None:
            return
        block = self.w3.eth.get_block("latest")
        floor = (
            int(block["baseFeePerGas"]) if "baseFeePerGas" in block else int(self.w3.eth.gas_price)
        )
        if floor > cap:
            raise FeeCapError(floor, cap)

    def _capped(self, tx: dict[str, Any]) -> dict[str, Any]:
        """``tx`` with its price held at the fee cap; FeeCapError if the chain's latest base fee
        (or, before EIP-1559, its gas price) is above the cap: it could not be mined."""
        cap = self.max_fee_per_gas
        if cap is None:
            return tx
        if "maxFeePerGas" in tx:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            if base > cap:
                raise FeeCapError(base, cap)
            tx["maxFeePerGas"] = min(int(tx["maxFeePerGas"]), cap)
            tx["maxPriorityFeePerGas"] = min(int(tx["maxPriorityFeePerGas"]), tx["maxFeePerGas"])
        else:
            price = int(tx["gasPrice"])
            block = self.w3.eth.get_block("latest")
            floor = int(block["baseFeePerGas"]) if "baseFeePerGas" in block else price
            if floor > cap:
                raise FeeCapError(floor, cap)
            tx["gasPrice"] = min(price, cap)
        return tx

    def _repriced(self, tx: dict[str, Any]) -> dict[str, Any] | None:
        """``tx`` at a price the pool takes as its replacement (every price 1/8 higher, and at
        least twice the latest base fee plus the tip, or the fee cap if that is less), or None
        when the fee cap leaves no room for one at or above the base fee."""
        out = dict(tx)
        cap = self.max_fee_per_gas
        if "maxFeePerGas" in tx:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(tx["maxPriorityFeePerGas"]) * 9 // 8 + 1
            least = int(tx["maxFeePerGas"]) * 9 // 8 + 1
            fee = max(least, 2 * base + tip)
            if cap is not None:
                fee = min(fee, cap)
                if fee < least or tip > fee or fee < base:  # below the base fee: never mined
                    return None
            out.update(maxFeePerGas=fee, maxPriorityFeePerGas=tip)
        else:
            least = int(tx["gasPrice"]) * 9 // 8 + 1
            price = max(least, int(self.w3.eth.gas_price))
            if cap is not None:
                price = min(price, cap)
                block = self.w3.eth.get_block("latest")
                if price < least or price < int(block.get("baseFeePerGas", 0)):
                    return None
            out["gasPrice"] = price
        return out

    def _mined_revert(self, tx: Any, receipt: TxReceipt) -> ContractRevertError:
        """Why a transaction that passed its estimate reverted once mined (``mined_tx`` set)."""
        error = self._why_mined_revert(tx, receipt)
        error.mined_tx = receipt["transactionHash"].hex()
        return error

    def _why_mined_revert(self, tx: Any, receipt: TxReceipt) -> ContractRevertError:
        """The same call replayed at the state it was mined on (the block before), decoded; or
        out of gas."""
        tx_hash = receipt["transactionHash"].hex()
        if receipt["gasUsed"] >= tx["gas"]:
            return ContractRevertError("OutOfGas", {"tx": tx_hash, "gas": tx["gas"]}, "0x")
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        call["from"] = (
            call.get("from") or self.w3.eth.get_transaction(receipt["transactionHash"])["from"]
        )
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            data = _revert_data(exc)
            if len(data) >= 10:
                return self.decoder.decode(data)
        except Web3RPCError:
            pass
        return ContractRevertError("Revert", {"tx": tx_hash}, "0x")

    def _raise_funds(self, exc: Exception, address: str) -> None:
        if _wants_funds(exc):
            raise InsufficientFundsError(
                address, self.w3.eth.get_balance(to_checksum_address(address))
            ) from None


def _wants_funds(exc: Exception) -> bool:
    """Whether the node refused a transaction because its sender cannot pay for it."""
    return "funds" in str(exc).lower()


def _price_value(tx: dict[str, Any]) -> int:
    return int(tx["maxFeePerGas"] if "maxFeePerGas" in tx else tx["gasPrice"])


def _price(tx: dict[str, Any]) -> str:
    if "maxFeePerGas" in tx:
        return f"max fee {tx['maxFeePerGas']} wei, tip {tx['maxPriorityFeePerGas']} wei"
    return f"gas price {tx['gasPrice']} wei"


def gwei(amount: float | None) -> int | None:
    """A fee cap given in gwei (settings: finite, at least 1 wei), in wei; None stays None."""
    return None if amount is None else max(1, round(amount * 10**9))


GAS_HEADROOM_DIVISOR = 4
"""A transaction's gas limit is its estimate plus a quarter of it ..."""
GAS_HEADROOM_FLAT = 20_000
"""... plus this, never above the block's gas limit."""


def _revert_data(exc: ContractLogicError) -> str:
    """Revert bytes as hex: anvil puts them in ``data``, ganache in ``data.result``."""
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data") or data.get("result") or ""
    text = str(data or "")
    return text if text.startswith("0x") else ""


def deploy_contract(w3: Web3, deployer: LocalAccount, name: str, *args: Any) -> TxReceipt:
    """Deploy the artifact ``name`` with constructor arguments; the receipt (with the address)."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = Transactor(w3, ErrorDecoder(artifact.abi)).send(factory.constructor(*args), deployer)
    if receipt["contractAddress"] is None:
        raise ChainError(f"deploying {name} produced no contract address")
    return receipt


def merged_abi(names: Sequence[str]) -> list[dict[str, Any]]:
    """The ABIs of several artifacts as one: a contract that delegates to an extension answers
    to both (entries the two share, such as events and errors of a common base, appear once)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in names:
        for item in load_artifact(name).abi:
            if item["type"] in ("constructor", "fallback", "receive") and name != names[0]:
                continue
            key = json.dumps(item, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


class ContractClient:
    """What every typed contract client shares: the artifact's ABI, an error decoder, a
    transactor, and a default sender. Subclasses name their contract in CONTRACT_NAME, and in
    EXTENSIONS the artifacts of extensions it delegates to (their functions are its own)."""

    CONTRACT_NAME: ClassVar[str]
    EXTENSIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, w3: Web3, address: str, default_sender: LocalAccount | None = None) -> None:
        abi = merged_abi((self.CONTRACT_NAME, *self.EXTENSIONS))
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=abi)
        self.errors = ErrorDecoder(abi)
        self.tx = Transactor(w3, self.errors)
        self.default_sender = default_sender

    @classmethod
    def _deploy(cls, w3: Web3, deployer: LocalAccount, *args: Any) -> tuple[Self, TxReceipt]:
        """Deploy the contract with constructor arguments; the client defaults to the deployer."""
        receipt = deploy_contract(w3, deployer, cls.CONTRACT_NAME, *args)
        return cls(w3, str(receipt["contractAddress"]), deployer), receipt

    def event_logs(
        self,
        name: str,
        from_block: int = 0,
        to_block: BlockIdentifier = "latest",
        **filters: Any,
    ) -> list[EventData]:
        """This contract's ``name`` events in a block range, in chain order; ``filters`` match
        indexed arguments by name (None matches any value). Read in ranges of at most
        ``LOG_RANGE`` blocks: RPC endpoints refuse wider ones, and a deployment's whole history
        soon is."""
        given = {k: v for k, v in filters.items() if v is not None}
        last = (
            to_block
            if isinstance(to_block, int)
            else int(self.w3.eth.get_block(to_block)["number"])
        )
        event = self.contract.events[name]()
        logs: list[EventData] = []
        for first in range(from_block, last + 1, LOG_RANGE):
            logs += event.get_logs(
                from_block=first, to_block=min(first + LOG_RANGE - 1, last), argument_filters=given
            )
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    def events_in(self, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
        """The decoded arguments of every ``name`` event this contract emitted in a receipt, in
        log order (other contracts' logs and other events are skipped)."""
        event = self.contract.events[name]()
        own = [log for log in receipt["logs"] if log["address"] == self.address]
        return [dict(log["args"]) for log in event.process_receipt({"logs": own}, errors=DISCARD)]

    def _sender(self, sender: LocalAccount | None) -> LocalAccount:
        chosen = sender or self.default_sender
        if chosen is None:
            raise ValueError("no sender account given and no default sender set")
        return chosen
