"""Every event a contract emitted, decoded, in chain order: the input to state rebuilding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from web3.types import BlockIdentifier

from redundancy.chain import ContractClient


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]
    block: int
    log_index: int
    tx_hash: str
    address: str


def contract_events(
    clients: Sequence[ContractClient], from_block: int, to_block: BlockIdentifier = "latest"
) -> list[Event]:
    """All events of the given contracts (typed clients on one chain) between two blocks,
    ordered by (block, log index)."""
    out: list[Event] = []
    for client in clients:
        w3, contract = client.w3, client.contract
        abi: list[dict[str, Any]] = list(contract.abi)  # type: ignore[arg-type]
        by_topic = {
            event_abi_to_log_topic(item): str(item["name"])  # type: ignore[arg-type]
            for item in abi
            if item.get("type") == "event"
        }
        logs = w3.eth.get_logs(
            {"address": contract.address, "fromBlock": from_block, "toBlock": to_block}
        )
        for log in logs:
            name = by_topic.get(bytes(log["topics"][0]))
            if name is None:
                continue
            decoded = getattr(contract.events, name)().process_log(log)
            out.append(
                Event(
                    name,
                    dict(decoded["args"]),
                    int(log["blockNumber"]),
                    int(log["logIndex"]),
                    log["transactionHash"].to_0x_hex(),
                    str(log["address"]),
                )
            )
    out.sort(key=lambda e: (e.block, e.log_index))
    return out
