"""The typed client of the SettlementLedger contract (batches and their signing: ``batches``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import BlockIdentifier, TxReceipt

from redundancy.batches import Batch, ledger_domain_separator, sorted_for_submission
from redundancy.chain import ContractClient
from redundancy.eip712 import Signature

CONTRACT_NAME = "SettlementLedger"


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """One ``BatchCommitted`` event: a batch the ledger accepted, who signed it, with what stake."""

    batch: Batch
    signers: list[str]
    signed_stake: int
    total_stake: int
    tx: str
    block: int


class SettlementClient(ContractClient):
    """Reads and writes one deployed SettlementLedger."""

    CONTRACT_NAME = CONTRACT_NAME

    def __init__(self, w3: Web3, address: str, default_sender: LocalAccount | None = None) -> None:
        super().__init__(w3, address, default_sender)
        self.domain_separator = ledger_domain_separator(int(w3.eth.chain_id), self.address)

    @classmethod
    def deploy(
        cls, w3: Web3, deployer: LocalAccount, selector: str
    ) -> tuple[SettlementClient, TxReceipt]:
        return cls._deploy(w3, deployer, to_checksum_address(selector))

    def commit_batch(
        self, batch: Batch, signatures: Sequence[Signature], sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Submit a batch with node signatures (sorted here by signer, as the ledger requires)."""
        ordered = sorted_for_submission(self.domain_separator, batch, signatures)
        fn = self.contract.functions.commitBatch(
            batch.as_tuple(), [(s.v, s.r, s.s) for s in ordered]
        )
        return self.tx.send(fn, self._sender(sender))

    def last_committed(self, block: BlockIdentifier = "latest") -> tuple[int, bytes, int]:
        """(last committed sequence, its state root, number of batches)."""
        seq, root, count = self.tx.call(
            lambda: self.contract.functions.lastCommitted().call(block_identifier=block)
        )
        return int(seq), bytes(root), int(count)

    def last_epoch(self, block: BlockIdentifier = "latest") -> int:
        """The epoch of the last committed batch (0 before the first): a batch of an older epoch
        is refused (SettlementStaleCommittee)."""
        return int(
            self.tx.call(lambda: self.contract.functions.lastEpoch().call(block_identifier=block))
        )

    def committed_batches(
        self, from_block: int = 0, to_block: BlockIdentifier = "latest"
    ) -> list[CommittedBatch]:
        """``BatchCommitted`` events in a block range, in chain order."""
        logs = self.event_logs("BatchCommitted", from_block, to_block)
        return [
            CommittedBatch(
                Batch(
                    int(log["args"]["epoch"]),
                    int(log["args"]["firstSequence"]),
                    int(log["args"]["lastSequence"]),
                    bytes(log["args"]["stateRoot"]),
                ),
                [str(a) for a in log["args"]["signers"]],
                int(log["args"]["signedStake"]),
                int(log["args"]["totalStake"]),
                log["transactionHash"].to_0x_hex(),
                int(log["blockNumber"]),
            )
            for log in logs
        ]
